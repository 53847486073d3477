using Microsoft.Data.Sqlite;
using Ordo.Audit;
using Ordo.Storage;
using static Ordo.Storage.Conformance.StoreFixtures;

namespace Ordo.Sqlite.Tests;

/// <summary>
/// An append's leaf is sealed after its commit, with others: what a process that stops before sealing leaves behind,
/// what two processes seal for one job, and what a row changed behind the store's back is not sealed as.
/// </summary>
public sealed class AuditSealingTests : IDisposable
{
    private static readonly TimeSpan Never = TimeSpan.FromHours(1);
    private readonly string _dir = Directory.CreateTempSubdirectory("ordo-audit-seal-").FullName;

    private string Db => Path.Combine(_dir, "ordo.db");

    private SqliteOrdoStore Open(string path) => new(new SqliteStoreOptions { Path = path, AuditSealInterval = Never });

    [Fact]
    public async Task CommittedLeaves_WaitUntilTheLogIsRead_ThenAreSealedOnePerCommitInOrder()
    {
        await using var store = Open(Db);
        var job = JobId.New(T0);
        await store.SubmitAsync(Job(job, T0, items: 0));
        for (var i = 0; i < 3; i++) await CommitAsync(store, job, $"s{i}");

        // The submission was sealed with its definition (a definition's leaf seals its whole group); the commits wait.
        Assert.Equal((4L, 1L), await SealColumnsAsync(Db, job));
        Assert.Equal(1, await CountAsync(Db, "SELECT count(*) FROM audit_leaves WHERE kind = 1"));

        Assert.Equal(5, await store.GetAuditLogSizeAsync());
        var leaves = await LeavesAsync(store, job);
        Assert.Equal([(1L, 1L), (2L, 2L), (3L, 3L), (4L, 4L)], leaves.Select(l => (l.FirstSeq, l.LastSeq)));
        Assert.Equal((4L, 4L), await SealColumnsAsync(Db, job));
        await AssertProvenAsync(store, job);
    }

    [Fact]
    public async Task LeavesOfAProcessThatDiedBeforeSealing_AreSealedByTheNextReader_FromTheJobsRow()
    {
        var job = JobId.New(T0);
        var copy = Path.Combine(_dir, "after-the-crash.db");
        await using (var store = Open(Db))
        {
            await store.SubmitAsync(Job(job, T0, items: 0));
            Assert.Equal(2, await store.GetAuditLogSizeAsync());
            for (var i = 0; i < 3; i++) await CommitAsync(store, job, $"s{i}");

            // The files as a process killed now leaves them: the commits durable, their leaves only in its memory.
            CopyDatabase(Db, copy);
        }

        await using var next = Open(copy);
        Assert.Equal((4L, 1L), await SealColumnsAsync(copy, job));
        Assert.Equal(3, await next.GetAuditLogSizeAsync());
        var leaves = await LeavesAsync(next, job);
        Assert.Equal([(1L, 1L), (2L, 4L)], leaves.Select(l => (l.FirstSeq, l.LastSeq)));
        Assert.Equal((await next.GetJobAsync(job))!.HeadHash, leaves[^1].Digest);
        await AssertProvenAsync(next, job);
    }

    [Fact]
    public async Task ALeafSealedByAnotherProcessFirst_CoversTheEventsBefore_AndTheEarlierLeavesAreDropped()
    {
        var job = JobId.New(T0);
        await using var a = Open(Db);
        await using var b = Open(Db);
        await a.SubmitAsync(Job(job, T0, items: 0));
        await CommitAsync(a, job, "a1");
        await CommitAsync(b, job, "b1");

        // b seals first: its own leaf (event 3) reaches back over the one waiting in a (event 2).
        Assert.Equal(3, await b.GetAuditLogSizeAsync());
        Assert.Equal([(1L, 1L), (2L, 3L)], (await LeavesAsync(b, job)).Select(l => (l.FirstSeq, l.LastSeq)));

        // a's close seals what waits in it: its leaf is covered already, so nothing is appended.
        await a.DisposeAsync();
        Assert.Equal(3, await b.GetAuditLogSizeAsync());
        await CommitAsync(b, job, "b2");
        Assert.Equal([(1L, 1L), (2L, 3L), (4L, 4L)], (await LeavesAsync(b, job)).Select(l => (l.FirstSeq, l.LastSeq)));
        await AssertProvenAsync(b, job);
    }

    [Fact]
    public async Task EventsAppendedBehindTheStoresBack_AreNotSealed_AndTheJobIsReported()
    {
        var job = JobId.New(T0);
        await using (var store = Open(Db))
        {
            await store.SubmitAsync(Job(job, T0, items: 0));
            await CommitAsync(store, job, "s1");
        }

        // A writer who moves the job's head to a copy of its last event, but not the column the store keeps with it.
        await ExecAsync(Db, """
            INSERT INTO events(job_key, seq, type, step_id, visit, attempt, scope, ts, agent, prompt_hash, model, policy, payload, hash, trace_id, span_id)
            SELECT job_key, seq + 1, type, step_id, visit, attempt, scope, ts, agent, prompt_hash, model, policy, payload, hash, trace_id, span_id FROM events WHERE seq = 2;
            UPDATE jobs SET last_seq = 3;
            """);

        await using var reader = Open(Db);
        var audit = Assert.Single((await AuditChecker.CheckAllAsync(reader, null)).Jobs);
        Assert.False(audit.Intact);
        Assert.Equal(2, (await LeavesAsync(reader, job)).Max(l => l.LastSeq));
        Assert.Equal((2L, 2L), await SealColumnsAsync(Db, job));
    }

    [Fact]
    public async Task EventsRewrittenBeforeTheirSeal_AndSealedByAnotherProcessFromTheStoredHashes_AreNamedByTheLeafOfTheProcessThatWroteThem()
    {
        var job = JobId.New(T0);
        var other = Path.Combine(_dir, "other.db");
        await using var writer = Open(Db);
        await writer.SubmitAsync(Job(job, T0, items: 0));

        // Another history of the same job, validly chained: what a writer who knows the format would put in its place.
        await ForgeNextStepAsync(other, job);
        await CommitAsync(writer, job, "real");
        await ReplaceSecondEventAsync(other);

        // A reader seals the job from what is stored (the forgery), before the writer sealed its own leaf.
        await using var reader = Open(Db);
        await reader.GetAuditLogSizeAsync();
        Assert.Equal([(1L, 1L), (2L, 2L)], (await LeavesAsync(reader, job)).Select(l => (l.FirstSeq, l.LastSeq)));

        // The writer's leaf is covered, but records another hash at event 2: it is sealed all the same, and named.
        await writer.DisposeAsync();
        Assert.Equal([(1L, 1L), (2L, 2L), (2L, 2L)], (await LeavesAsync(reader, job)).Select(l => (l.FirstSeq, l.LastSeq)));
        var audit = Assert.Single((await AuditChecker.CheckAllAsync(reader, null)).Jobs);
        Assert.Contains(audit.Problems, p => p.StartsWith("events up to 2 differ from those the audit log recorded", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ALogThatCannotBeAppendedTo_FailsItsSeals_NotTheCommits_AndVerifyNamesIt()
    {
        var job = JobId.New(T0);
        await using (var store = Open(Db))
        {
            await store.SubmitAsync(Job(job, T0, items: 0));
            for (var i = 0; i < 20; i++) await CommitAsync(store, job, $"s{i}");
            await store.GetAuditLogSizeAsync();
        }

        // The kept subtrees deleted: a new process cannot read the log's right edge back, so it cannot append.
        await ExecAsync(Db, "DELETE FROM audit_nodes");
        await using var next = Open(Db);
        await CommitAsync(next, job, "after");
        await next.GetAuditLogSizeAsync();
        await CommitAsync(next, job, "after-the-failed-seal");
        Assert.Equal((23L, 21L), await SealColumnsAsync(Db, job));
        var report = await AuditChecker.CheckAllAsync(next, null);
        Assert.Contains(report.LogProblems, p => p.Contains("no stored hash for its subtree", StringComparison.Ordinal));
    }

    [Fact]
    public async Task SealedEventsRewritten_AreNamed_EvenAfterALaterLeafWasAppendedOnTheRewrittenChain()
    {
        var job = JobId.New(T0);
        var other = Path.Combine(_dir, "other.db");
        await using var store = Open(Db);
        await store.SubmitAsync(Job(job, T0, items: 0));
        await ForgeNextStepAsync(other, job);
        await CommitAsync(store, job, "real");
        Assert.Equal(3, await store.GetAuditLogSizeAsync());
        await ReplaceSecondEventAsync(other);

        // The job goes on from the rewritten chain: its newest leaf agrees with it, the one before does not.
        await CommitAsync(store, job, "next");
        Assert.Equal(4, await store.GetAuditLogSizeAsync());
        var audit = Assert.Single((await AuditChecker.CheckAllAsync(store, null)).Jobs);
        Assert.Contains(audit.Problems, p => p.StartsWith("events up to 2 differ from those the audit log recorded", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AThousandWaitingLeaves_AreSealedByTheCommitThatMakesThem1024_WithoutBeingAsked()
    {
        await using var store = Open(Db);
        var job = JobId.New(T0);
        await store.SubmitAsync(Job(job, T0, items: 0));
        for (var i = 0; i < 1024; i++) await CommitAsync(store, job, $"s{i}");
        Assert.Equal(1025, await CountAsync(Db, "SELECT count(*) FROM audit_leaves WHERE kind = 1"));
    }

    /// <summary>The job's newest leaf is in the log whose head the store reports, and records its head.</summary>
    private static async Task AssertProvenAsync(SqliteOrdoStore store, JobId job)
    {
        var head = await AuditLog.GetHeadAsync(store);
        var proof = await AuditLog.ProveJobAsync(store, job, head.Size);
        Assert.True(proof!.Verify(head.Root));
        Assert.Equal((await store.GetJobAsync(job))!.HeadHash, (await LeavesAsync(store, job))[^1].Digest);
    }

    /// <summary>A copy of the database as it is, where the job's next step is committed otherwise: another valid history.</summary>
    private async Task ForgeNextStepAsync(string other, JobId job)
    {
        CopyDatabase(Db, other);
        await using var forger = Open(other);
        await CommitAsync(forger, job, "forged");
    }

    /// <summary>Puts the other history's event 2, and its head, in place of this database's: the chain recomputed, as a writer who knows the format would.</summary>
    private Task ReplaceSecondEventAsync(string other) => ExecAsync(Db, $"""
        ATTACH '{other}' AS o;
        DELETE FROM events WHERE seq = 2;
        INSERT INTO events SELECT * FROM o.events WHERE seq = 2;
        UPDATE jobs SET head_hash = (SELECT head_hash FROM o.jobs);
        """);

    private static async Task CommitAsync(IOrdoStore store, JobId job, string step)
    {
        var state = await StateAsync(store, job);
        Assert.Equal(CommitOutcome.Committed, (await store.CommitAsync(Commit(state, [Succeeded(step, T0)]))).Outcome);
    }

    private static async Task<List<AuditLeaf>> LeavesAsync(IAuditLogStore store, JobId job)
    {
        var list = new List<AuditLeaf>();
        await foreach (var leaf in store.ReadAuditLeavesOfAsync(job.Value)) list.Add(leaf.Leaf);
        return list;
    }

    private static void CopyDatabase(string from, string to)
    {
        File.Copy(from, to);
        if (File.Exists(from + "-wal")) File.Copy(from + "-wal", to + "-wal");
    }

    private static async Task<(long Logged, long Sealed)> SealColumnsAsync(string path, JobId job)
    {
        await using var c = new SqliteConnection($"Data Source={path};Pooling=False");
        await c.OpenAsync();
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT logged_seq, sealed_seq FROM jobs WHERE job_id = $id";
        cmd.Parameters.AddWithValue("$id", job.Value);
        await using var r = await cmd.ExecuteReaderAsync();
        Assert.True(await r.ReadAsync());
        return (r.GetInt64(0), r.GetInt64(1));
    }

    private static async Task<long> CountAsync(string path, string sql)
    {
        await using var c = new SqliteConnection($"Data Source={path};Pooling=False");
        await c.OpenAsync();
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    private static async Task ExecAsync(string path, string sql)
    {
        await using var c = new SqliteConnection($"Data Source={path};Pooling=False");
        await c.OpenAsync();
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        await cmd.ExecuteNonQueryAsync();
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
