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
                UPDATE meta SET value = '4' WHERE key = 'schema_version';
                """;
            cmd.ExecuteNonQuery();
        }

        await using (var store = new SqliteOrdoStore(path))
        {
            await store.InitializeAsync();
            Assert.Equal(6, store.SchemaVersion);
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

        // The database as version 5, the one before the audit log (SqliteSchema.AuditLogVersion), left it: no audit tables.
        using (var c = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "DROP TABLE audit_leaves; DROP TABLE audit_nodes; DROP TABLE audit_checkpoints; UPDATE meta SET value = '5' WHERE key = 'schema_version';";
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
