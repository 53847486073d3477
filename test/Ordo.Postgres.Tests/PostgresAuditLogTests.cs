using Npgsql;
using Ordo.Audit;
using Ordo.Storage;
using static Ordo.Storage.Conformance.StoreFixtures;

namespace Ordo.Postgres.Tests;

/// <summary>
/// The audit log on PostgreSQL: appends of many processes do not wait for each other, and their pending leaves are
/// sealed into one dense log in which each job's leaves keep their order.
/// </summary>
public sealed class PostgresAuditLogTests : IAsyncLifetime
{
    private readonly string _schema = PostgresTestServer.NewSchema();
    private readonly List<PostgresOrdoStore> _stores = [];

    private PostgresOrdoStore Open(Action<PostgresStoreOptions>? configure = null)
    {
        var options = new PostgresStoreOptions { ConnectionString = PostgresTestServer.ConnectionString, Schema = _schema };
        configure?.Invoke(options);
        var store = new PostgresOrdoStore(options);
        _stores.Add(store);
        return store;
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var s in _stores) await s.DisposeAsync();
        PostgresTestServer.DropSchema(_schema);
    }

    private async Task<long> ScalarAsync(string sql)
    {
        await using var c = new NpgsqlConnection(PostgresTestServer.ConnectionString);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql.Replace("{s}", "\"" + _schema + "\"", StringComparison.Ordinal), c);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task CommitsOfThreeStoresAtOnce_AreSealedIntoOneDenseLog_EachJobInItsOrder()
    {
        // Three processes, each sealing in the background after every write while the others commit.
        var stores = Enumerable.Range(0, 3).Select(_ => Open(o => o.AuditSealInterval = TimeSpan.Zero)).ToList();
        await stores[0].InitializeAsync();
        const int jobs = 24;
        const int commits = 8;
        var ids = Enumerable.Range(0, jobs).Select(_ => JobId.New(T0)).ToList();
        await Task.WhenAll(ids.Select(async (id, i) =>
        {
            var store = stores[i % stores.Count];
            await store.SubmitAsync(Job(id, T0, items: 0));
            for (var k = 0; k < commits; k++)
            {
                // Each commit through another process than the one before, as a job's steps move between workers.
                var by = stores[(i + k) % stores.Count];
                var state = await StateAsync(by, id);
                Assert.Equal(CommitOutcome.Committed, (await by.CommitAsync(Commit(state, [Succeeded("s" + k, T0)]))).Outcome);
            }
        }));

        var size = await stores[1].GetAuditLogSizeAsync();
        Assert.Equal(1 + jobs + (jobs * commits), size);
        Assert.Equal(0, await ScalarAsync("SELECT count(*) FROM {s}.audit_pending"));
        var leaves = await ToListAsync(stores[2].ReadAuditLeavesAsync(0, size));
        Assert.Equal(Enumerable.Range(0, (int)size).Select(i => (long)i), leaves.Select(l => l.Index));
        foreach (var id in ids)
        {
            var mine = leaves.Where(l => l.Leaf.Subject == id.Value).ToList();
            var events = await ToListAsync(stores[0].ReadEventsAsync(id));
            Assert.Equal(commits + 1, mine.Count);
            var next = 1L;
            foreach (var leaf in mine)
            {
                Assert.Equal(next, leaf.Leaf.FirstSeq);
                Assert.Equal(events[(int)leaf.Leaf.LastSeq - 1].Hash, leaf.Leaf.Digest);
                next = leaf.Leaf.LastSeq + 1;
            }

            Assert.Equal(events.Count + 1, next);
        }

        var head = await AuditLog.GetHeadAsync(stores[0]);
        var frontier = new MerkleFrontier();
        foreach (var l in leaves) frontier.Append(l.Leaf.Hash(), []);
        Assert.Equal(frontier.Root(), head.Root);
    }

    [Theory]
    [InlineData("UPDATE {s}.audit_head SET size = size - 3", "it was lowered")]
    [InlineData("DELETE FROM {s}.audit_head", "has 0 rows where it has one")]
    public async Task AHeadLoweredOrDeleted_IsNamedByTheFullCheck_ItsLeavesStayPending_AndEveryJobIsStillCompared(string tamper, string named)
    {
        var store = Open(o => o.AuditSealInterval = TimeSpan.FromHours(1));
        var ids = Enumerable.Range(0, 3).Select(_ => JobId.New(T0)).ToList();
        foreach (var id in ids)
        {
            await store.SubmitAsync(Job(id, T0, items: 0));
            for (var k = 0; k < 3; k++) await store.CommitAsync(Commit(await StateAsync(store, id), [Succeeded("s" + k, T0)]));
        }

        Assert.Equal(13, await store.GetAuditLogSizeAsync());
        // What the check says of each job before (the fixture's definitions are not real bundles: reported as such).
        var before = (await AuditChecker.CheckAllAsync(store, null)).Jobs.ToDictionary(j => j.JobId, j => j.Problems);
        await ScalarAsync(tamper + " RETURNING 0");
        // A commit after it: its leaf cannot be sealed at an index already taken (nor at none), and stays pending.
        await store.CommitAsync(Commit(await StateAsync(store, ids[0]), [Succeeded("late", T0)]));

        var size = await Assert.ThrowsAsync<InvalidDataException>(async () => await store.GetAuditLogSizeAsync());
        Assert.Contains("audit_head", size.Message, StringComparison.Ordinal);
        Assert.Contains(named, size.Message, StringComparison.Ordinal);
        Assert.Equal(1, await ScalarAsync("SELECT count(*) FROM {s}.audit_pending"));
        Assert.Equal(13, await ScalarAsync("SELECT count(*) FROM {s}.audit_leaves"));

        var report = await AuditChecker.CheckAllAsync(store, null);
        Assert.False(report.Intact);
        Assert.Contains(report.LogProblems, p => p.Contains(named, StringComparison.Ordinal));
        // Every job is compared with its sealed leaves: the two untouched as before, the one whose newest leaf could
        // not be sealed is reported as written past the log.
        Assert.Contains(report.Jobs.Single(j => j.JobId == ids[0]).Problems, p => p.Contains("are not in the audit log", StringComparison.Ordinal));
        Assert.All(report.Jobs.Where(j => j.JobId != ids[0]), j => Assert.Equal(before[j.JobId], j.Problems));
        var one = await AuditChecker.CheckJobAsync(store, ids[1], null);
        Assert.Contains(one.LogProblems, p => p.Contains(named, StringComparison.Ordinal));
        Assert.Equal(before[ids[1]], one.Jobs.Single().Problems);
    }

    [Fact]
    public async Task PendingLeaves_AreSealedWithoutAReader_ByTheProcessThatCommits()
    {
        var store = Open(o => o.AuditSealInterval = TimeSpan.Zero);
        var id = JobId.New(T0);
        await store.SubmitAsync(Job(id, T0, items: 0));
        for (var k = 0; k < 5; k++)
        {
            var state = await StateAsync(store, id);
            await store.CommitAsync(Commit(state, [Succeeded("s" + k, T0)]));
        }

        // No read of the log: the store seals after its writes, in the background.
        var deadline = DateTimeOffset.UtcNow.AddSeconds(20);
        while (await ScalarAsync("SELECT size FROM {s}.audit_head") < 7 && DateTimeOffset.UtcNow < deadline) await Task.Delay(20);
        Assert.Equal(7, await ScalarAsync("SELECT size FROM {s}.audit_head"));
        Assert.Equal(0, await ScalarAsync("SELECT count(*) FROM {s}.audit_pending"));
    }

    [Fact]
    public async Task ASchemaOfVersionTwo_IsMigrated_AndItsLogGoesOn()
    {
        var first = Open();
        var id = JobId.New(T0);
        await first.SubmitAsync(Job(id, T0, items: 0));
        Assert.Equal(2, await first.GetAuditLogSizeAsync());
        await first.DisposeAsync();

        // As version 2 left it: no pending table (nor what later versions added).
        await ScalarAsync("""
            SELECT 0 FROM (SELECT 1) x; DROP TABLE {s}.audit_pending;
            DROP TABLE {s}.job_stats; DROP TABLE {s}.agent_stats; DROP TABLE {s}.release_records; ALTER TABLE {s}.jobs DROP COLUMN shadow;
            DELETE FROM {s}.schema_version WHERE version >= 3
            """);
        var second = Open();
        await second.InitializeAsync();
        Assert.Equal(PostgresSchema.Version, second.SchemaVersion);
        var state = await StateAsync(second, id);
        Assert.Equal(CommitOutcome.Committed, (await second.CommitAsync(Commit(state, [Succeeded("after", T0)]))).Outcome);
        var leaves = await ToListAsync(second.ReadAuditLeavesAsync(0, long.MaxValue));
        Assert.Equal([0L, 1L, 2L], leaves.Select(l => l.Index));
        Assert.Equal(id.Value, leaves[2].Leaf.Subject);
    }

    private static async Task<List<T>> ToListAsync<T>(IAsyncEnumerable<T> items)
    {
        var list = new List<T>();
        await foreach (var item in items) list.Add(item);
        return list;
    }
}
