using Npgsql;
using Ordo.Events;
using Ordo.Queue;
using Ordo.State;
using Ordo.Storage;
using static Ordo.Storage.Conformance.StoreFixtures;

namespace Ordo.Postgres.Tests;

/// <summary>What only the PostgreSQL store does: several stores (processes) on one schema, liveness by advisory locks, wake-ups by NOTIFY, its schema and its errors.</summary>
public sealed class PostgresStoreTests : IAsyncLifetime
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

    [Fact]
    public async Task AWorkerOfAnotherStore_IsAlive_UntilItsSessionEnds_ThenDead()
    {
        var other = Open();
        var mine = Open();
        await other.InitializeAsync();
        var id = JobId.New(T0);
        await other.SubmitAsync(Job(id, T0));
        var item = Assert.Single(await other.ClaimAsync(Claim("host-b/42/worker", T0)));
        Assert.Equal(WorkerLiveness.Alive, mine.GetWorkerLiveness("host-b/42/worker"));
        Assert.Equal(WorkerLiveness.Dead, mine.GetWorkerLiveness("host-b/43/never-seen"));

        // Its process ends (the store is closed without releasing anything): its lease is still there, its lock is gone.
        // The server ends the session as soon as it sees the socket closed: within moments, not a lease's time.
        await other.DisposeAsync();
        var deadline = DateTimeOffset.UtcNow.AddSeconds(10);
        while (mine.GetWorkerLiveness("host-b/42/worker") != WorkerLiveness.Dead && DateTimeOffset.UtcNow < deadline) await Task.Delay(20);
        Assert.Equal(WorkerLiveness.Dead, mine.GetWorkerLiveness("host-b/42/worker"));
        var taken = Assert.Single(await mine.ClaimAsync(Claim("host-c/7/worker", T0.AddSeconds(1), dead: ["host-b/42/worker"])));
        Assert.Equal(item.Lease.ItemId, taken.Lease.ItemId);
        Assert.Equal(item.Lease.Token + 1, taken.Lease.Token);
        Assert.Equal(["host-b/42/worker"], taken.LostOwners);
    }

    [Fact]
    public async Task AWatchingWorker_IsWokenByAnotherStoresSubmission_WithoutPolling()
    {
        var watcher = Open(o => o.ListenCheckInterval = TimeSpan.FromMinutes(5));
        var submitter = Open();
        await watcher.InitializeAsync();
        var woken = new SemaphoreSlim(0);
        using var watch = watcher.WatchForWork("w", () => woken.Release());
        Assert.NotNull(watch);
        // The first wake comes when the channel is listening (work added before it was would be found by a look).
        Assert.True(await woken.WaitAsync(TimeSpan.FromSeconds(30)));
        while (woken.CurrentCount > 0) await woken.WaitAsync();

        await submitter.SubmitAsync(Job(JobId.New(T0), T0));
        Assert.True(await woken.WaitAsync(TimeSpan.FromSeconds(10)), "no wake-up after a submission in another store");

        // A commit that leases its successor to its own worker has nothing for others: no wake-up.
        var id = JobId.New(T0.AddSeconds(1));
        await submitter.SubmitAsync(Job(id, T0, items: 0) with { WorkItems = [new NewWorkItem { Step = new StepRef("s", 1, 1), AvailableAt = T0, LeaseOwner = "me", LeaseExpiresAt = T0.AddMinutes(1) }] });
        Assert.False(await woken.WaitAsync(TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public async Task AJobThatEnds_IsAnnouncedToWatchersOfOtherStores_AndOnlyThen()
    {
        var watcher = Open(o => o.ListenCheckInterval = TimeSpan.FromMinutes(5));
        var runner = Open();
        await watcher.InitializeAsync();
        var ended = new System.Collections.Concurrent.BlockingCollection<JobId?>();
        using var watch = watcher.WatchJobEnds(ended.Add);
        // The first call (null) says the channel listens.
        Assert.True(ended.TryTake(out var first, TimeSpan.FromSeconds(30)));
        Assert.Null(first);

        var id = JobId.New(T0);
        await runner.SubmitAsync(Job(id, T0));
        var state = await StateAsync(runner, id);
        Assert.Equal(CommitOutcome.Committed, (await runner.CommitAsync(Commit(state, [Succeeded("s1", T0)]))).Outcome);
        Assert.False(ended.TryTake(out _, TimeSpan.FromMilliseconds(500)), "a job that goes on was announced as ended");
        state = await StateAsync(runner, id);
        Assert.Equal(CommitOutcome.Committed, (await runner.CommitAsync(Commit(state, [], drop: true, status: JobStatus.Completed))).Outcome);
        Assert.True(ended.TryTake(out var announced, TimeSpan.FromSeconds(10)));
        Assert.Equal(id, announced);
    }

    [Fact]
    public async Task ACommitRacingATakeover_EitherWinsOrIsRefused_NeverBoth()
    {
        var a = Open();
        var b = Open();
        await a.InitializeAsync();
        for (var round = 0; round < 20; round++)
        {
            var id = JobId.New(T0.AddMinutes(round));
            await a.SubmitAsync(Job(id, T0));
            var held = Assert.Single(await a.ClaimAsync(Claim("a", T0, root: id, lease: TimeSpan.FromSeconds(1))));
            var state = await StateAsync(a, id);
            // The lease has expired: b takes the item over while a commits its result, at the same time, on another connection.
            var commit = a.CommitAsync(Commit(state, [Succeeded("s1", T0)], ack: held.Lease)).AsTask();
            var claim = b.ClaimAsync(Claim("b", T0.AddSeconds(2), root: id)).AsTask();
            var committed = (await commit).Outcome;
            var taken = await claim;
            if (committed == CommitOutcome.Committed)
            {
                Assert.Empty(taken);
            }
            else
            {
                Assert.Equal(CommitOutcome.LeaseLost, committed);
                Assert.Single(taken);
            }

            var events = new List<EventEnvelope>();
            await foreach (var e in a.ReadEventsAsync(id)) events.Add(e);
            Assert.Equal(committed == CommitOutcome.Committed ? 1 : 0, events.Count(e => e.Type == EventTypes.StepSucceeded));
            Assert.True((await AuditVerifier.VerifyAsync(a, id)).Intact);
        }
    }

    [Fact]
    public async Task CommitsThatFindEverySlotTaken_AreWrittenTogether_AndOneRefused_LeavesTheOthersWritten()
    {
        var store = Open(o => o.CommitSlots = 1);
        await store.InitializeAsync();
        var ids = Enumerable.Range(0, 40).Select(i => JobId.New(T0.AddMilliseconds(i))).ToList();
        foreach (var id in ids) await store.SubmitAsync(Job(id, T0));
        var held = (await store.ClaimAsync(Claim("w", T0, max: 100))).ToDictionary(i => i.JobId);
        Assert.Equal(40, held.Count);
        var commits = new List<JobCommit>();
        foreach (var id in ids)
        {
            var lease = held[id].Lease;
            // Job 7's worker lost its lease (another holds a newer token): only its commit may be refused.
            if (id == ids[7]) lease = lease with { Token = lease.Token + 1 };
            commits.Add(Commit(await StateAsync(store, id), [Succeeded("s1", T0)], ack: lease));
        }

        // Every commit at once: the first takes the slot, the others wait for it and go as one group. The group holds job
        // 7's refused commit, so it is written one by one instead; the next round, with nothing refused, goes together.
        for (var round = 0; round < 3 && store.CommitsWrittenTogether == 0; round++)
        {
            var results = await Task.WhenAll(commits.Select(c => store.CommitAsync(c).AsTask()));
            if (round == 0)
            {
                Assert.Equal(CommitOutcome.LeaseLost, results[7].Outcome);
                Assert.All(results.Where((_, i) => i != 7), r => Assert.Equal(CommitOutcome.Committed, r.Outcome));
            }

            commits = [.. await Task.WhenAll(ids.Select(async id => Commit(await StateAsync(store, id), [Succeeded("s2", T0)], keep: false)))];
        }

        Assert.True(store.CommitsWrittenTogether > 1, "no commits were written together");
        foreach (var id in ids)
        {
            var events = new List<EventEnvelope>();
            await foreach (var e in store.ReadEventsAsync(id)) events.Add(e);
            Assert.Equal(id == ids[7] ? 0 : 1, events.Count(e => e.Type == EventTypes.StepSucceeded && e.StepId == "s1"));
            Assert.True((await AuditVerifier.VerifyAsync(store, id)).Intact);
        }
    }

    [Fact]
    public async Task ChainedStepCommitsOfOneJob_AreWrittenAsOneStatement_WithALeafPerCommit()
    {
        var store = Open();
        await store.InitializeAsync();
        var id = JobId.New(T0);
        await store.SubmitAsync(Job(id, T0));
        var entry = Assert.Single(await store.ClaimAsync(Claim("w1", T0, root: id)));
        var branches = Enumerable.Range(1, 8).Select(i => Work(new StepRef("p" + i, 1, 1), T0)).ToList();
        Assert.Equal(CommitOutcome.Committed, (await store.CommitAsync(Commit(await StateAsync(store, id), [Succeeded("s1", T0)], ack: entry.Lease, enqueue: branches))).Outcome);
        var leased = (await store.ClaimAsync(Claim("w1", T0, max: 8, root: id))).OrderBy(i => i.Step.StepId, StringComparer.Ordinal).ToList();
        Assert.Equal(8, leased.Count);

        var state = await StateAsync(store, id);
        var commits = new List<JobCommit>();
        foreach (var item in leased)
        {
            var last = item == leased[^1];
            var next = new NewWorkItem { Step = new StepRef("join", 1, 1), AvailableAt = T0, LeaseOwner = "w1", LeaseExpiresAt = T0.AddSeconds(30) };
            var commit = Commit(state, [Succeeded(item.Step.StepId, T0.AddMilliseconds(commits.Count))], ack: item.Lease, enqueue: last ? [next] : null);
            commits.Add(commit);
            state = JobStateReducer.Apply(state, commit.Events);
        }

        var leavesBefore = await LeavesAsync(store, id);
        var results = await Task.WhenAll(store.CommitInOrder(commits));

        Assert.All(results, r => Assert.Equal(CommitOutcome.Committed, r.Outcome));
        Assert.Equal(8, store.StepRunCommits);
        var join = Assert.Single(results[^1].LeasedItems);
        // The join took over the last branch's row, with the next fencing token.
        Assert.Equal((leased[^1].Lease.ItemId, leased[^1].Lease.Token + 1), (join.Lease.ItemId, join.Lease.Token));
        Assert.Equal(state.Seq, (await store.GetJobAsync(id))!.LastSeq);
        var events = new List<EventEnvelope>();
        await foreach (var e in store.ReadEventsAsync(id)) events.Add(e);
        Assert.Equal(Enumerable.Range(1, 8).Select(i => "p" + i), events.Where(e => e.Type == EventTypes.StepSucceeded && e.StepId != "s1").Select(e => e.StepId));
        var queue = await store.GetQueueSummaryAsync(id, T0);
        Assert.Equal((0, 1), (queue.Ready, queue.Leased));
        // One audit leaf per commit, as if each had been written alone.
        Assert.Equal(leavesBefore + 8, await LeavesAsync(store, id));
        Assert.True((await AuditVerifier.VerifyAsync(store, id)).Intact);
    }

    [Fact]
    public async Task ACommitSentAhead_WaitsForTheCommitItContinues_AndIsWrittenRightAfterIt()
    {
        var store = Open();
        await store.InitializeAsync();
        Assert.True(store.CanCommitAhead);
        var id = JobId.New(T0);
        await store.SubmitAsync(Job(id, T0));
        var entry = Assert.Single(await store.ClaimAsync(Claim("w1", T0, root: id)));
        var state = await StateAsync(store, id);
        var s2 = new NewWorkItem { Step = new StepRef("s2", 1, 1), AvailableAt = T0, LeaseOwner = "w1", LeaseExpiresAt = T0.AddSeconds(30) };
        var first = Commit(state, [Succeeded("s1", T0)], ack: entry.Lease, enqueue: [s2]);
        // The second step's lease is known before the first commit is written: the same row, the next token.
        var predicted = entry.Lease with { Token = entry.Lease.Token + 1, ExpiresAt = s2.LeaseExpiresAt };
        var second = Commit(JobStateReducer.Apply(state, first.Events), [Succeeded("s2", T0.AddMilliseconds(1))], ack: predicted, drop: true, status: JobStatus.Completed) with { Ahead = true };

        // Another transaction holds the job's row, as a commit being written does: the first commit waits behind it, then
        // the second, sent ahead, behind both.
        await using var holder = await store.DataSource.OpenConnectionAsync();
        await using var tx = await holder.BeginTransactionAsync();
        await using (var hold = new NpgsqlCommand("SELECT FROM jobs WHERE job_id = $1 FOR UPDATE", holder, tx))
        {
            hold.Parameters.Add(new NpgsqlParameter { Value = id.Value });
            await hold.ExecuteNonQueryAsync();
        }

        var writingFirst = store.CommitAsync(first).AsTask();
        await WaitersAsync(store, holder.ProcessID, 1);
        var writingSecond = store.CommitAsync(second).AsTask();
        await WaitersAsync(store, holder.ProcessID, 2);
        await tx.CommitAsync();

        Assert.Equal(CommitOutcome.Committed, (await writingFirst).Outcome);
        Assert.Equal(CommitOutcome.Committed, (await writingSecond).Outcome);
        Assert.Equal(1, store.CommitsWrittenAhead);
        Assert.Equal(JobStatus.Completed, (await store.GetJobAsync(id))!.Status);
        var events = new List<EventEnvelope>();
        await foreach (var e in store.ReadEventsAsync(id)) events.Add(e);
        Assert.Equal(["s1", "s2"], events.Where(e => e.Type == EventTypes.StepSucceeded).Select(e => e.StepId));
        Assert.Equal((0, 0), ((await store.GetQueueSummaryAsync(id, T0)).Ready, (await store.GetQueueSummaryAsync(id, T0)).Leased));
        Assert.True((await AuditVerifier.VerifyAsync(store, id)).Intact);
    }

    [Fact]
    public async Task ACommitSentAhead_OfACommitNeverWritten_IsRefused_AndWritesNothing()
    {
        var store = Open();
        await store.InitializeAsync();
        var id = JobId.New(T0);
        await store.SubmitAsync(Job(id, T0));
        var entry = Assert.Single(await store.ClaimAsync(Claim("w1", T0, root: id)));
        var state = await StateAsync(store, id);
        var s2 = new NewWorkItem { Step = new StepRef("s2", 1, 1), AvailableAt = T0, LeaseOwner = "w1", LeaseExpiresAt = T0.AddSeconds(30) };
        var first = Commit(state, [Succeeded("s1", T0)], ack: entry.Lease, enqueue: [s2]);
        var predicted = entry.Lease with { Token = entry.Lease.Token + 1, ExpiresAt = s2.LeaseExpiresAt };
        var second = Commit(JobStateReducer.Apply(state, first.Events), [Succeeded("s2", T0)], ack: predicted, drop: true, status: JobStatus.Completed) with { Ahead = true };

        var refused = await store.CommitAsync(second);

        Assert.NotEqual(CommitOutcome.Committed, refused.Outcome);
        Assert.Equal(0, store.CommitsWrittenAhead);
        Assert.Equal(state.Seq, (await store.GetJobAsync(id))!.LastSeq);
        Assert.Equal((0, 1), ((await store.GetQueueSummaryAsync(id, T0)).Ready, (await store.GetQueueSummaryAsync(id, T0)).Leased));
        // The commit it continues is then written as usual, and the job goes on.
        Assert.Equal(CommitOutcome.Committed, (await store.CommitAsync(first)).Outcome);
        Assert.Equal(CommitOutcome.Committed, (await store.CommitAsync(second)).Outcome);
        Assert.True((await AuditVerifier.VerifyAsync(store, id)).Intact);
    }

    [Fact]
    public async Task AChainOfPureSteps_SendsCommitsAhead_AndEachStepSucceedsOnce()
    {
        var store = Open();
        await store.InitializeAsync();
        var runs = new int[31];
        var b = Workflows.WorkflowBuilder.Create("ahead", 1);
        for (var k = 1; k <= 30; k++)
        {
            var (index, previous, next) = (k, k > 1 ? $"n{k - 1}" : null, k < 30 ? $"n{k + 1}" : null);
            b.Step($"n{k}", s =>
            {
                s.Code(ctx =>
                {
                    Interlocked.Increment(ref runs[index]);
                    var before = previous is null ? 0 : ctx.OutputOf(previous)!.Value.GetProperty("i").GetInt32();
                    return Json.Of(new { i = before + 1 });
                }, pure: true);
                if (next is not null) s.Next(next);
            });
        }

        await using var runtime = new Engine.OrdoRuntime(store, new Engine.OrdoRuntimeOptions { Workers = 2 });
        var ids = new List<JobId>();
        for (var j = 0; j < 5; j++) ids.Add((await runtime.SubmitAsync(b.Build(), null)).JobId);
        await runtime.RunAsync(new Engine.RunRequest { UntilIdle = true });

        Assert.True(store.CommitsWrittenAhead > 0, "no commit was written ahead");
        Assert.All(runs.Skip(1), r => Assert.InRange(r, 5, 10));
        foreach (var id in ids)
        {
            var state = await StateAsync(store, id);
            Assert.Equal(JobStatus.Completed, state.Status);
            Assert.Equal(30, state.Steps["n30"].Output!.Value.GetProperty("i").GetInt32());
            var succeeded = new List<string?>();
            await foreach (var e in store.ReadEventsAsync(id)) if (e.Type == EventTypes.StepSucceeded) succeeded.Add(e.StepId);
            Assert.Equal(Enumerable.Range(1, 30).Select(k => $"n{k}"), succeeded);
            Assert.True((await AuditVerifier.VerifyAsync(store, id)).Intact);
        }
    }

    [Fact]
    public async Task WithNoCommitsAhead_TheStoreSaysSo()
    {
        var store = Open(o => o.CommitsAhead = 0);
        await store.InitializeAsync();
        Assert.False(store.CanCommitAhead);
        Assert.Throws<ArgumentException>(() => new PostgresOrdoStore(new PostgresStoreOptions { ConnectionString = PostgresTestServer.ConnectionString, CommitsAhead = -1 }));
    }

    /// <summary>Waits until <paramref name="count"/> sessions wait, directly or behind each other, for the lock <paramref name="holder"/> holds.</summary>
    private static async Task WaitersAsync(PostgresOrdoStore store, int holder, int count)
    {
        await using var c = await store.DataSource.OpenConnectionAsync();
        for (var i = 0; ; i++)
        {
            var blocked = new List<(int Pid, int[] By)>();
            await using (var q = new NpgsqlCommand("SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity WHERE wait_event_type = 'Lock'", c))
            await using (var r = await q.ExecuteReaderAsync())
            {
                while (await r.ReadAsync()) blocked.Add((r.GetInt32(0), r.GetFieldValue<int[]>(1)));
            }

            var behind = new HashSet<int> { holder };
            while (blocked.FirstOrDefault(b => !behind.Contains(b.Pid) && b.By.Any(behind.Contains)) is { Pid: > 0 } next) behind.Add(next.Pid);
            if (behind.Count - 1 >= count) return;
            if (i > 2000) throw new TimeoutException($"fewer than {count} sessions wait behind session {holder}");
            await Task.Delay(5);
        }
    }

    /// <summary>The audit leaves of <paramref name="id"/>'s log, sealed or pending.</summary>
    private static async Task<long> LeavesAsync(PostgresOrdoStore store, JobId id)
    {
        await using var c = await store.DataSource.OpenConnectionAsync();
        await using var leaves = new NpgsqlCommand("SELECT (SELECT count(*) FROM audit_leaves WHERE subject = $1) + (SELECT count(*) FROM audit_pending WHERE subject = $1)", c);
        leaves.Parameters.Add(new NpgsqlParameter { Value = id.Value });
        return (long)(await leaves.ExecuteScalarAsync())!;
    }

    [Fact]
    public async Task ASchemaWithADroppedTable_IsRefusedNamingIt_AndATableDroppedWhileOpen_IsNamedToo()
    {
        var first = Open();
        await first.InitializeAsync();
        await first.SubmitAsync(Job(JobId.New(T0), T0));
        await using (var c = await first.DataSource.OpenConnectionAsync())
        await using (var drop = new NpgsqlCommand("DROP TABLE work_items", c))
        {
            await drop.ExecuteNonQueryAsync();
        }

        // Opened again: refused before anything is written, naming the table.
        var e = await Assert.ThrowsAsync<StoreUnavailableException>(async () => await Open().InitializeAsync());
        Assert.Contains("is damaged: its schema version is", e.Message, StringComparison.Ordinal);
        Assert.Contains("no table work_items", e.Message, StringComparison.Ordinal);

        // Already open: the statement that needs it fails as a store that cannot be used, naming what is missing.
        var u = await Assert.ThrowsAsync<StoreUnavailableException>(async () => await first.SubmitAsync(Job(JobId.New(T0.AddSeconds(1)), T0)));
        Assert.Contains("is damaged", u.Message, StringComparison.Ordinal);
        Assert.Contains("work_items", u.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SubmissionsThatFindEverySlotTaken_AreWrittenTogether_AndADuplicate_IsRefusedAlone()
    {
        var store = Open(o => o.CommitSlots = 1);
        await store.InitializeAsync();
        var existing = JobId.New(T0);
        await store.SubmitAsync(Job(existing, T0));

        // Every submission at once: the first takes the slot, the others wait and go as one group. The group holds a job
        // that exists already, so it is written one by one instead, and only that one is refused.
        var ids = Enumerable.Range(1, 30).Select(i => JobId.New(T0.AddMilliseconds(i))).ToList();
        var submissions = ids.Select(id => store.SubmitAsync(Job(id, T0, items: 2)).AsTask()).Append(store.SubmitAsync(Job(existing, T0)).AsTask()).ToList();
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => submissions[^1]);
        Assert.Contains(existing.Value, refused.Message, StringComparison.Ordinal);
        var records = await Task.WhenAll(submissions.Take(30));
        Assert.Equal(ids, records.Select(r => r.JobId));

        // The next round, with nothing refused, goes together; each job gets its own items, claimed once each.
        var more = Enumerable.Range(31, 30).Select(i => JobId.New(T0.AddMilliseconds(i))).ToList();
        await Task.WhenAll(more.Select(id => store.SubmitAsync(Job(id, T0, items: 2)).AsTask()));
        Assert.True(store.SubmissionsWrittenTogether > 1, "no submissions were written together");
        var claimed = await store.ClaimAsync(Claim("w", T0, max: 500));
        Assert.Equal(121, claimed.Count);
        Assert.All(ids.Concat(more).Append(existing), id => Assert.Equal(id == existing ? 1 : 2, claimed.Count(i => i.JobId == id)));
        foreach (var id in ids.Concat(more)) Assert.True((await AuditVerifier.VerifyAsync(store, id)).Intact);
    }

    [Fact]
    public async Task ManyStoresClaimingAtOnce_DeliverEachItemOnce()
    {
        var stores = Enumerable.Range(0, 4).Select(_ => Open()).ToList();
        await stores[0].InitializeAsync();
        for (var i = 0; i < 40; i++) await stores[0].SubmitAsync(Job(JobId.New(T0.AddMilliseconds(i)), T0, tenant: "t" + (i % 3), items: 2));
        var claimed = await Task.WhenAll(stores.Select(async (s, n) =>
        {
            var mine = new List<WorkItem>();
            while (true)
            {
                var batch = await s.ClaimAsync(Claim("w" + n, T0, max: 3));
                if (batch.Count == 0) return mine;
                mine.AddRange(batch);
            }
        }));
        var all = claimed.SelectMany(x => x).ToList();
        Assert.Equal(80, all.Count);
        Assert.Equal(80, all.Select(i => i.Lease.ItemId).Distinct().Count());
        Assert.All(all, i => Assert.Equal(1, i.Deliveries));
    }

    [Fact]
    public async Task Schema_IsVersioned_AndANewerOneIsRefused()
    {
        var store = Open();
        await store.InitializeAsync();
        Assert.Equal(4, store.SchemaVersion);
        await using (var c = new NpgsqlConnection(PostgresTestServer.ConnectionString))
        {
            await c.OpenAsync();
            await using var cmd = new NpgsqlCommand($"SELECT max(version) FROM \"{_schema}\".schema_version", c);
            Assert.Equal(4, await cmd.ExecuteScalarAsync());
            cmd.CommandText = $"INSERT INTO \"{_schema}\".schema_version(version, description) VALUES (99, 'from the future')";
            await cmd.ExecuteNonQueryAsync();
        }

        var e = await Assert.ThrowsAsync<StoreUnavailableException>(async () => await Open().InitializeAsync());
        Assert.Contains("schema version 99", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Version3Schema_GetsItsStatsRows_FromTheStoredEvents_InTheMigration()
    {
        var store = Open();
        await store.InitializeAsync();
        var step = new StepRef("s1", 1, 1);
        for (var i = 0; i < 3; i++)
        {
            var id = JobId.New(T0.AddMilliseconds(i));
            await store.SubmitAsync(Job(id, T0, tenant: i == 2 ? "globex" : "acme"));
            var state = await StateAsync(store, id);
            await store.CommitAsync(Commit(state,
            [
                EventFactory.Step(EventTypes.ModelCallSucceeded, step, new ModelCallSucceededPayload("m", "fast", "scripted", "m", "{}", 100, 10 * i, 0.25m + (i * 0.0000001m), 1), T0, agent: "a@1", promptHash: "sha256:p"),
                EventFactory.Step(EventTypes.StepFailed, step, new StepFailedPayload("x", "x", true, i == 0, 1, 1, null), T0, agent: "a@1", promptHash: "sha256:p"),
                EventFactory.Step(EventTypes.ArtifactRejected, step, new ArtifactVerdictPayload("finding", 1, "rejected", "no evidence", null), T0),
                i == 1 ? EventFactory.Job(EventTypes.JobCompleted, new JobCompletedPayload(1000), T0.AddSeconds(i + 1)) : EventFactory.Job(EventTypes.JobFailed, new JobFailedPayload("x", "s1", "x"), T0.AddSeconds(i + 1)),
            ], status: i == 1 ? JobStatus.Completed : JobStatus.Failed));
        }

        var query = new Ordo.Stats.StatsQuery { Since = T0.AddDays(-1) };
        var before = await store.ReadStatsAsync(query);
        var beforeAcme = await store.ReadStatsAsync(query with { Tenant = "acme" });

        // The schema as version 3 left it: no summary rows, no release records, no shadow flag.
        await using (var c = new NpgsqlConnection(PostgresTestServer.ConnectionString))
        {
            await c.OpenAsync();
            await using var cmd = new NpgsqlCommand($"""
                DROP TABLE "{_schema}".job_stats; DROP TABLE "{_schema}".agent_stats; DROP TABLE "{_schema}".release_records;
                ALTER TABLE "{_schema}".jobs DROP COLUMN shadow;
                DELETE FROM "{_schema}".schema_version WHERE version = 4;
                """, c);
            await cmd.ExecuteNonQueryAsync();
        }

        var upgraded = Open();
        await upgraded.InitializeAsync();
        var after = await upgraded.ReadStatsAsync(query);
        var (b, a) = (Assert.Single(before.Versions), Assert.Single(after.Versions));
        Assert.Equal((3, 1, 2, 330L, 0.7500003m, 1L, 3), (a.Jobs, a.Completed, a.Failed, a.Tokens, a.Cost, a.Retries, a.JobsWithRejections));
        Assert.Equal((b.Workflow, b.Version, b.Jobs, b.Completed, b.Failed, b.Cancelled, b.Tokens, b.Cost, b.Retries, b.JobsWithRejections, b.JobsWithEscalations),
            (a.Workflow, a.Version, a.Jobs, a.Completed, a.Failed, a.Cancelled, a.Tokens, a.Cost, a.Retries, a.JobsWithRejections, a.JobsWithEscalations));
        Assert.Equal(b.LatenciesMs.Order(), a.LatenciesMs.Order());
        Assert.Equal(before.Agents, after.Agents);
        Assert.Equal(Assert.Single(beforeAcme.Versions).Jobs, Assert.Single((await upgraded.ReadStatsAsync(query with { Tenant = "acme" })).Versions).Jobs);
        Assert.Equal(beforeAcme.Agents, (await upgraded.ReadStatsAsync(query with { Tenant = "acme" })).Agents);

        // Commits after the migration add to the filled rows.
        var more = JobId.New(T0.AddMilliseconds(9));
        await upgraded.SubmitAsync(Job(more, T0));
        await upgraded.CommitAsync(Commit(await StateAsync(upgraded, more),
            [EventFactory.Step(EventTypes.StepSucceeded, step, new StepSucceededPayload(Ordo.Json.Of(new { ok = true }), 1, null, null), T0, agent: "a@1", promptHash: "sha256:p")]));
        Assert.Equal(3, Assert.Single(after.Agents).Calls);
        Assert.Equal(4, Assert.Single((await upgraded.ReadStatsAsync(query)).Agents).Calls);
    }

    [Theory]
    [InlineData("window")]
    [InlineData("tenant")]
    [InlineData("workflow")]
    public async Task StatsQueries_ReadTheirRowsThroughAnIndex_NeverTheEvents(string filter)
    {
        var store = Open();
        await store.InitializeAsync();
        await using var c = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(PostgresTestServer.ConnectionString) { SearchPath = _schema }.ConnectionString);
        await c.OpenAsync();
        // 20,000 jobs over 100 days, of 3 tenants and 50 workflows, each with an agent row; then the planner's statistics.
        await using (var fill = new NpgsqlCommand("""
            INSERT INTO job_stats(job_id, tenant, workflow, version, created_at, ended_at, status, tokens, cost)
            SELECT 'j' || i, 'tenant-' || (i % 3), 'flow-' || (i % 50), 1, i::bigint * 432000, i::bigint * 432000 + 1000, 'completed', 10, 0.001 FROM generate_series(1, 20000) i;
            INSERT INTO agent_stats(job_id, agent, prompt_hash, tenant, workflow, version, created_at, calls, failures, tokens, cost)
            SELECT job_id, 'a@1', 'sha256:p', tenant, workflow, version, created_at, 1, 0, 10, 0.001 FROM job_stats;
            ANALYZE job_stats; ANALYZE agent_stats;
            """, c))
        {
            await fill.ExecuteNonQueryAsync();
        }

        var query = filter switch
        {
            "window" => new Ordo.Stats.StatsQuery { Since = DateTimeOffset.FromUnixTimeMilliseconds(19_800L * 432000) },
            "tenant" => new Ordo.Stats.StatsQuery { Since = DateTimeOffset.FromUnixTimeMilliseconds(19_000L * 432000), Tenant = "tenant-1" },
            _ => new Ordo.Stats.StatsQuery { Since = DateTimeOffset.UnixEpoch, Workflow = "flow-7" },
        };
        // A window of one day of 100, one tenant's jobs of 5 days, one workflow's of all time (a canary's judgment): each
        // read through an index of its table (the planner picks which), never the whole table, never an event.
        foreach (var (sql, table) in new[] { (PostgresOrdoStore.VersionTotalsSql, "job_stats"), (PostgresOrdoStore.AgentTotalsSql, "agent_stats") })
        {
            await using var batch = new NpgsqlBatch(c);
            var explain = PostgresOrdoStore.StatsCommand("EXPLAIN (FORMAT TEXT) " + sql, query);
            batch.BatchCommands.Add(explain);
            var plan = new System.Text.StringBuilder();
            await using (var r = await batch.ExecuteReaderAsync())
            {
                while (await r.ReadAsync()) plan.AppendLine(r.GetString(0));
            }

            Assert.Matches($"(Index (Only )?Scan using|Bitmap Index Scan on) {table}_by_\\w+", plan.ToString());
            Assert.DoesNotContain("Seq Scan", plan.ToString(), StringComparison.Ordinal);
            Assert.DoesNotContain("events", plan.ToString(), StringComparison.Ordinal);
        }

        var data = await store.ReadStatsAsync(query);
        var expected = Enumerable.Range(1, 20000).Count(i => filter switch { "window" => i >= 19_800, "tenant" => i >= 19_000 && i % 3 == 1, _ => i % 50 == 7 });
        Assert.Equal(expected, data.Versions.Sum(v => v.Jobs));
        Assert.Equal(expected, data.Agents.Sum(a => a.Calls));
    }

    [Fact]
    public async Task ASchemaOfAnotherProgram_IsNeverWritten()
    {
        await using (var c = new NpgsqlConnection(PostgresTestServer.ConnectionString))
        {
            await c.OpenAsync();
            await using var cmd = new NpgsqlCommand($"CREATE SCHEMA \"{_schema}\"; CREATE TABLE \"{_schema}\".customers(id int)", c);
            await cmd.ExecuteNonQueryAsync();
        }

        var e = await Assert.ThrowsAsync<StoreUnavailableException>(async () => await Open().InitializeAsync());
        Assert.Contains("customers", e.Message, StringComparison.Ordinal);
        Assert.Contains("not an Ordo schema", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AMissingSchema_IsNotCreated_WhenTheStoreMayNotCreateIt()
    {
        var e = await Assert.ThrowsAsync<StoreUnavailableException>(async () => await Open(o => o.CreateSchema = false).InitializeAsync());
        Assert.Contains("there is no Ordo schema", e.Message, StringComparison.Ordinal);
        await using var c = new NpgsqlConnection(PostgresTestServer.ConnectionString);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", c) { Parameters = { new() { Value = _schema } } };
        Assert.Equal(0L, await cmd.ExecuteScalarAsync());
    }

    [Fact]
    public async Task AnUnreachableServer_IsNamed()
    {
        var store = new PostgresOrdoStore(new PostgresStoreOptions { ConnectionString = "Host=127.0.0.1;Port=1;Username=x;Database=y;Timeout=3", Schema = _schema });
        _stores.Add(store);
        var e = await Assert.ThrowsAsync<StoreUnavailableException>(async () => await store.InitializeAsync());
        Assert.StartsWith("PostgreSQL at 127.0.0.1:1 cannot be reached", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AServerThatRequiresAPassword_WhenNoneIsGiven_IsUnavailable_NamingHostAndPort()
    {
        await using var server = FakePostgresServer.RequiringAPassword();
        var store = new PostgresOrdoStore(new PostgresStoreOptions { ConnectionString = $"Host=127.0.0.1;Port={server.Port};Username=ordo;Database=ordo;Timeout=10", Schema = _schema });
        _stores.Add(store);
        var e = await Assert.ThrowsAsync<StoreUnavailableException>(async () => await store.InitializeAsync());
        Assert.StartsWith($"PostgreSQL at 127.0.0.1:{server.Port} requires a password and none was given", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task APassfileThatCannotBeRead_IsUnavailable_WithoutItsPath()
    {
        await using var server = FakePostgresServer.RequiringAPassword();
        var missing = Path.Combine(Path.GetTempPath(), "ordo-no-such-pgpass-" + Guid.NewGuid().ToString("N"));
        var store = new PostgresOrdoStore(new PostgresStoreOptions { ConnectionString = $"Host=127.0.0.1;Port={server.Port};Username=ordo;Database=ordo;Timeout=10;Passfile={missing}", Schema = _schema });
        _stores.Add(store);
        var e = await Assert.ThrowsAsync<StoreUnavailableException>(async () => await store.InitializeAsync());
        Assert.StartsWith($"PostgreSQL at 127.0.0.1:{server.Port}: a file the connection string names", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(missing, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("version text, description text", "INSERT INTO {0}.schema_version VALUES ('1', 'init')")]
    [InlineData("installed_rank int, version varchar(50), description varchar(200), type varchar(20), script varchar(1000), checksum int, installed_by varchar(100), installed_on timestamp, execution_time int, success boolean", "INSERT INTO {0}.schema_version VALUES (1, '1', 'init', 'SQL', 'V1__init.sql', 0, 'me', now(), 1, true)")]
    [InlineData("id int", null)]
    [InlineData("version integer", null)]
    public async Task AnotherProgramsSchemaVersionTable_IsRefusedAsNotAnOrdoSchema_AndLeftAsItWas(string columns, string? row)
    {
        var schema = Sql.Quote(_schema);
        await using (var c = new NpgsqlConnection(PostgresTestServer.ConnectionString))
        {
            await c.OpenAsync();
            await using var cmd = new NpgsqlCommand($"CREATE SCHEMA {schema}; CREATE TABLE {schema}.schema_version({columns}); {(row is null ? "" : string.Format(System.Globalization.CultureInfo.InvariantCulture, row, schema))}", c);
            await cmd.ExecuteNonQueryAsync();
        }

        var e = await Assert.ThrowsAsync<StoreUnavailableException>(async () => await Open().InitializeAsync());
        Assert.Contains("not an Ordo schema: its schema_version table is another program's", e.Message, StringComparison.Ordinal);
        await using (var c = new NpgsqlConnection(PostgresTestServer.ConnectionString))
        {
            await c.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT string_agg(table_name, ',') FROM information_schema.tables WHERE table_schema = $1", c) { Parameters = { new() { Value = _schema } } };
            Assert.Equal("schema_version", await cmd.ExecuteScalarAsync());
        }
    }

    [Theory]
    [InlineData("Host=x;Schema Typo=1", "connection string")]
    [InlineData("Host=x;Search Path=Bad-Name", "cannot name the Ordo schema")]
    [InlineData("Host=x;Search Path=pg_catalog", "is a schema of PostgreSQL itself")]
    [InlineData("Host=x;Search Path=pg_temp", "is a schema of PostgreSQL itself")]
    [InlineData("Host=x;Search Path=pg_toast", "is a schema of PostgreSQL itself")]
    [InlineData("Host=x;Search Path=pg_ordo", "is a schema of PostgreSQL itself")]
    [InlineData("Host=x;Search Path=information_schema", "is a schema of PostgreSQL itself")]
    [InlineData("Host=x;Search Path=a,b", "Search Path names 2 schemas (a, b): name exactly one")]
    [InlineData("Host=x;Search Path=ordo, public", "Search Path names 2 schemas (ordo, public): name exactly one")]
    public void BadSettings_AreRefusedWithTheReason(string connectionString, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => new PostgresOrdoStore(connectionString));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("pg_catalog")]
    [InlineData("information_schema")]
    public void AReservedSchemaGivenInTheOptions_IsRefused(string schema)
    {
        var e = Assert.Throws<ArgumentException>(() => new PostgresOrdoStore(new PostgresStoreOptions { ConnectionString = "Host=x", Schema = schema }));
        Assert.Contains("is a schema of PostgreSQL itself", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Host=x;Search Path=ordo_a", "ordo_a")]
    [InlineData("Host=x;Search Path=\"ordo_b\"", "ordo_b")]
    [InlineData("Host=x;Search Path=ordo_c,", "ordo_c")]
    [InlineData("Host=x", "ordo")]
    public async Task OneSchemaInTheSearchPath_NamesTheOrdoSchema(string connectionString, string expected)
    {
        await using var store = new PostgresOrdoStore(connectionString);
        Assert.Equal(expected, store.Schema);
    }
}
