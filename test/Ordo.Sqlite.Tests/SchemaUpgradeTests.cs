using Microsoft.Data.Sqlite;
using Ordo.Audit;
using Ordo.Storage.Conformance;

namespace Ordo.Sqlite.Tests;

public sealed class SchemaUpgradeTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "ordo-upgrade-" + Guid.NewGuid().ToString("N"));

    public SchemaUpgradeTests() => Directory.CreateDirectory(_dir);

    [Fact]
    public async Task Version4Database_KillSwitchesStopEveryTenant_AfterTheUpgrade()
    {
        var path = Path.Combine(_dir, "ordo.db");
        await using (var store = new SqliteOrdoStore(path))
        {
            await store.InitializeAsync();
        }

        // The database as version 4 left it: one switch per target, no tenant.
        using (var c = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = """
                DROP TABLE kill_switches;
                CREATE TABLE kill_switches(target TEXT PRIMARY KEY, reason TEXT, set_by TEXT NOT NULL, set_at INTEGER NOT NULL) WITHOUT ROWID;
                INSERT INTO kill_switches VALUES ('tool:web.*', 'outage', 'ops', 0);
                ALTER TABLE jobs DROP COLUMN shadow; ALTER TABLE jobs DROP COLUMN logged_seq; ALTER TABLE jobs DROP COLUMN sealed_seq;
                UPDATE meta SET value = '4' WHERE key = 'schema_version';
                """;
            cmd.ExecuteNonQuery();
        }

        await using (var store = new SqliteOrdoStore(path))
        {
            await store.InitializeAsync();
            Assert.Equal(8, store.SchemaVersion);
            var kept = Assert.Single(await store.ListKillSwitchesAsync());
            Assert.Equal(("tool:web.*", "outage", null), (kept.Target, kept.Reason, kept.Tenant));
            await store.SetKillSwitchAsync(kept with { Tenant = "acme", Reason = "acme's" });
            Assert.Equal(2, (await store.ListKillSwitchesAsync()).Count);
        }
    }

    [Fact]
    public async Task DatabaseBeforeTheAuditLog_IsBackfilled_OneLeafPerDefinitionAndJob_InTheUpgrade()
    {
        var path = Path.Combine(_dir, "ordo.db");
        var first = JobId.New(StoreFixtures.T0);
        var second = JobId.New(StoreFixtures.T0);
        await using (var store = new SqliteOrdoStore(path))
        {
            await store.InitializeAsync();
            await store.SubmitAsync(StoreFixtures.Job(first, StoreFixtures.T0));
            await store.SubmitAsync(StoreFixtures.Job(second, StoreFixtures.T0, items: 3));
        }

        // The database as version 5, the one before the audit log (SqliteSchema.AuditLogVersion), left it: no audit tables,
        // no stats rows.
        using (var c = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = """
                DROP TABLE audit_leaves; DROP TABLE audit_nodes; DROP TABLE audit_checkpoints;
                DROP TABLE job_stats; DROP TABLE agent_stats; DROP TABLE release_records; ALTER TABLE jobs DROP COLUMN shadow; ALTER TABLE jobs DROP COLUMN logged_seq; ALTER TABLE jobs DROP COLUMN sealed_seq;
                UPDATE meta SET value = '5' WHERE key = 'schema_version';
                """;
            cmd.ExecuteNonQuery();
        }

        await using (var store = new SqliteOrdoStore(path))
        {
            await store.InitializeAsync();
            var leaves = new List<StoredAuditLeaf>();
            await foreach (var leaf in store.ReadAuditLeavesAsync(0, long.MaxValue)) leaves.Add(leaf);
            Assert.Equal([(AuditLeafKind.Definition, "sha256:def", 0L), (AuditLeafKind.Events, first.Value, 2L), (AuditLeafKind.Events, second.Value, 4L)],
                leaves.Select(l => (l.Leaf.Kind, l.Leaf.Subject, l.Leaf.LastSeq)));
            Assert.Equal((await store.GetJobAsync(second))!.HeadHash, leaves[2].Leaf.Digest);
            var head = await AuditLog.GetHeadAsync(store);
            var inclusion = await AuditLog.ProveJobAsync(store, second, head.Size);
            Assert.True(inclusion!.Verify(head.Root));

            // Appends after the upgrade continue the backfilled tree.
            await store.SubmitAsync(StoreFixtures.Job(JobId.New(StoreFixtures.T0), StoreFixtures.T0));
            var after = await AuditLog.GetHeadAsync(store);
            Assert.Equal(4, after.Size);
            var proof = await AuditLog.ProveConsistencyAsync(store, head.Size, after.Size);
            Assert.True(MerkleProofs.VerifyConsistency(head.Size, after.Size, proof, head.Root, after.Root));
        }
    }

    [Fact]
    public async Task Version6Database_GetsItsStatsRows_FromTheStoredEvents()
    {
        var path = Path.Combine(_dir, "stats.db");
        var t0 = Ordo.Storage.Conformance.StoreFixtures.T0;
        Ordo.Stats.StatsData before;
        await using (var store = new SqliteOrdoStore(path))
        {
            await store.InitializeAsync();
            for (var i = 0; i < 3; i++)
            {
                var id = JobId.New(t0.AddMilliseconds(i));
                await store.SubmitAsync(Ordo.Storage.Conformance.StoreFixtures.Job(id, t0));
                var state = await Ordo.Storage.Conformance.StoreFixtures.StateAsync(store, id);
                var step = new Ordo.Events.StepRef("s1", 1, 1);
                await store.CommitAsync(Ordo.Storage.Conformance.StoreFixtures.Commit(state,
                [
                    Ordo.Events.EventFactory.Step(Ordo.Events.EventTypes.ModelCallSucceeded, step, new Ordo.Events.ModelCallSucceededPayload("m", "fast", "scripted", "m", "{}", 100, 10 * i, 0.25m, 1), t0, agent: "a@1", promptHash: "sha256:p"),
                    Ordo.Events.EventFactory.Step(Ordo.Events.EventTypes.StepFailed, step, new Ordo.Events.StepFailedPayload("x", "x", true, i == 0, 1, 1, null), t0, agent: "a@1", promptHash: "sha256:p"),
                    Ordo.Events.EventFactory.Job(Ordo.Events.EventTypes.JobFailed, new Ordo.Events.JobFailedPayload("x", "s1", "x"), t0.AddSeconds(i + 1)),
                ], status: Ordo.State.JobStatus.Failed));
            }

            before = await store.ReadStatsAsync(new Ordo.Stats.StatsQuery { Since = t0.AddDays(-1) });
        }

        // The database as version 6, the one before the stats rows, left it: no summary rows, no release records, no shadow flag.
        using (var c = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "DROP TABLE job_stats; DROP TABLE agent_stats; DROP TABLE release_records; ALTER TABLE jobs DROP COLUMN shadow; ALTER TABLE jobs DROP COLUMN logged_seq; ALTER TABLE jobs DROP COLUMN sealed_seq; UPDATE meta SET value = '6' WHERE key = 'schema_version';";
            cmd.ExecuteNonQuery();
        }

        await using (var store = new SqliteOrdoStore(path))
        {
            await store.InitializeAsync();
            Assert.Equal(8, store.SchemaVersion);
            var after = await store.ReadStatsAsync(new Ordo.Stats.StatsQuery { Since = t0.AddDays(-1) });
            var (b, a) = (Assert.Single(before.Versions), Assert.Single(after.Versions));
            Assert.Equal((3, 3, 330L, 0.75m, 1L), (a.Jobs, a.Failed, a.Tokens, a.Cost, a.Retries));
            Assert.Equal((b.Jobs, b.Failed, b.Tokens, b.Cost, b.Retries), (a.Jobs, a.Failed, a.Tokens, a.Cost, a.Retries));
            Assert.Equal(b.LatenciesMs.Order(), a.LatenciesMs.Order());
            Assert.Equal(before.Agents, after.Agents);
        }
    }

    [Fact]
    public async Task Version7Database_IsSealedAsFarAsItWasLogged_AndGetsNoLeafTwice()
    {
        var path = Path.Combine(_dir, "v7.db");
        var job = JobId.New(StoreFixtures.T0);
        long size;
        await using (var store = new SqliteOrdoStore(path))
        {
            await store.SubmitAsync(StoreFixtures.Job(job, StoreFixtures.T0, items: 0));
            var state = await StoreFixtures.StateAsync(store, job);
            await store.CommitAsync(StoreFixtures.Commit(state, [StoreFixtures.Succeeded("s1", StoreFixtures.T0)]));
            size = await store.GetAuditLogSizeAsync();
        }

        // The database as version 7 left it: every leaf written with its commit, no seal columns.
        using (var c = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "ALTER TABLE jobs DROP COLUMN logged_seq; ALTER TABLE jobs DROP COLUMN sealed_seq; UPDATE meta SET value = '7' WHERE key = 'schema_version';";
            cmd.ExecuteNonQuery();
        }

        await using (var store = new SqliteOrdoStore(path))
        {
            await store.InitializeAsync();
            Assert.Equal(8, store.SchemaVersion);
            Assert.Equal(size, await store.GetAuditLogSizeAsync());
            using var c = new SqliteConnection($"Data Source={path};Pooling=False");
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "SELECT last_seq, logged_seq, sealed_seq FROM jobs";
            using var r = cmd.ExecuteReader();
            Assert.True(r.Read());
            Assert.Equal((2L, 2L, 2L), (r.GetInt64(0), r.GetInt64(1), r.GetInt64(2)));
        }
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_dir, true);
        }
        catch (IOException)
        {
        }
    }
}
