using System.Text;
using Ordo.Events;
using Ordo.Queue;
using Ordo.State;
using Ordo.Storage;
using static Ordo.Storage.Conformance.StoreFixtures;

namespace Ordo.Storage.Conformance;

/// <summary>
/// The storage contract, as one suite that every store must pass: conditional appends, one-transaction commits,
/// leases with fencing tokens, delayed and prioritized work, snapshots, and an intact hash chain throughout.
/// </summary>
public abstract partial class StoreConformanceTests : IAsyncLifetime
{
    private IOrdoStore? _store;

    protected IOrdoStore Store => _store ?? throw new InvalidOperationException("not initialized");

    /// <summary>Creates a fresh, empty store.</summary>
    protected abstract Task<IOrdoStore> CreateStoreAsync();

    public async Task InitializeAsync()
    {
        _store = await CreateStoreAsync();
        await _store.InitializeAsync();
    }

    public async Task DisposeAsync()
    {
        if (_store is not null) await _store.DisposeAsync();
    }

    [Fact]
    public async Task Submit_StoresJobEventsAndDefinition()
    {
        var id = JobId.New(T0);
        var record = await Store.SubmitAsync(Job(id, T0));
        Assert.Equal(2, record.LastSeq);
        Assert.Equal(JobStatus.Queued, record.Status);
        var read = await Store.GetJobAsync(id);
        Assert.NotNull(read);
        Assert.Equal(id, read!.JobId);
        Assert.Equal("w", read.Workflow);
        Assert.Equal(id, read.RootJobId);
        Assert.Equal(record.HeadHash, read.HeadHash);
        var events = await ToListAsync(Store.ReadEventsAsync(id));
        Assert.Equal([1L, 2L], events.Select(e => e.Seq));
        Assert.Equal(EventTypes.JobSubmitted, events[0].Type);
        Assert.Equal(EventChain.GenesisHash.ToArray(), events[0].PrevHash);
        Assert.Equal(events[0].Hash, events[1].PrevHash);
        var definition = await Store.GetDefinitionAsync("sha256:def");
        Assert.Equal([1, 2, 3], definition!.Content);
    }

    [Fact]
    public async Task Submit_SameIdTwice_Throws()
    {
        var id = JobId.New(T0);
        await Store.SubmitAsync(Job(id, T0));
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await Store.SubmitAsync(Job(id, T0)));
        Assert.Equal(2, (await ToListAsync(Store.ReadEventsAsync(id))).Count);
    }

    [Fact]
    public async Task Commit_AtExpectedSeq_AppendsAndAdvances()
    {
        var id = JobId.New(T0);
        await Store.SubmitAsync(Job(id, T0));
        var state = await StateAsync(Store, id);
        var result = await Store.CommitAsync(Commit(state, [Succeeded("s1", T0)]));
        Assert.Equal(CommitOutcome.Committed, result.Outcome);
        var job = await Store.GetJobAsync(id);
        Assert.Equal(3, job!.LastSeq);
        Assert.Equal(JobStatus.Running, job.Status);
        Assert.True((await AuditVerifier.VerifyAsync(Store, id)).Intact);
    }

    [Fact]
    public async Task Commit_WithStaleExpectedSeq_ConflictsAndWritesNothing()
    {
        var id = JobId.New(T0);
        await Store.SubmitAsync(Job(id, T0));
        var stale = await StateAsync(Store, id);
        Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(Commit(stale, [Succeeded("s1", T0)]))).Outcome);
        var second = await Store.CommitAsync(Commit(stale, [Succeeded("s1", T0.AddSeconds(1))], enqueue: [new NewWorkItem { Step = new StepRef("x", 1, 1), AvailableAt = T0 }]));
        Assert.Equal(CommitOutcome.Conflict, second.Outcome);
        Assert.Equal(3, (await ToListAsync(Store.ReadEventsAsync(id))).Count);
        var summary = await Store.GetQueueSummaryAsync(id, T0);
        Assert.Equal(1, summary.Ready);
    }

    [Fact]
    public async Task Commit_ConcurrentWithSameExpectedSeq_ExactlyOneWins()
    {
        var id = JobId.New(T0);
        await Store.SubmitAsync(Job(id, T0));
        var state = await StateAsync(Store, id);
        var commits = Enumerable.Range(0, 16).Select(i => Commit(state, [Succeeded("s" + i, T0.AddMilliseconds(i))])).ToList();
        var results = await Task.WhenAll(commits.Select(c => Task.Run(async () => await Store.CommitAsync(c))));
        Assert.Equal(1, results.Count(r => r.Outcome == CommitOutcome.Committed));
        Assert.Equal(15, results.Count(r => r.Outcome == CommitOutcome.Conflict));
        Assert.Equal(3, (await ToListAsync(Store.ReadEventsAsync(id))).Count);
        Assert.True((await AuditVerifier.VerifyAsync(Store, id)).Intact);
    }

    [Fact]
    public async Task CommitInOrder_ChainedCommitsOfOneJob_AllApplyInOrder()
    {
        var id = JobId.New(T0);
        var other = JobId.New(T0);
        await Store.SubmitAsync(Job(id, T0));
        await Store.SubmitAsync(Job(other, T0));
        var state = await StateAsync(Store, id);
        var first = Commit(state, [Succeeded("s1", T0)]);
        var afterFirst = JobStateReducer.Apply(state, first.Events);
        var second = Commit(afterFirst, [Succeeded("s2", T0.AddMilliseconds(1))], enqueue: [Work(new StepRef("next", 1, 1), T0)]);
        var third = Commit(await StateAsync(Store, other), [Succeeded("o1", T0)]);

        var results = await Task.WhenAll(Store.CommitInOrder([first, second, third]));

        Assert.All(results, r => Assert.Equal(CommitOutcome.Committed, r.Outcome));
        Assert.Equal([1L, 2L, 3L, 4L], (await ToListAsync(Store.ReadEventsAsync(id))).Select(e => e.Seq));
        Assert.Equal(["s1", "s2"], (await ToListAsync(Store.ReadEventsAsync(id, 2))).Select(e => e.StepId));
        Assert.Equal(4, (await Store.GetJobAsync(id))!.LastSeq);
        Assert.Equal(3, (await Store.GetJobAsync(other))!.LastSeq);
        Assert.Equal(["next#1", "s1#1"], await ClaimKeysAsync(Store, id, T0));
        Assert.True((await AuditVerifier.VerifyAsync(Store, id)).Intact);
        Assert.True((await AuditVerifier.VerifyAsync(Store, other)).Intact);
    }

    [Fact]
    public async Task CommitInOrder_ARefusedCommit_UndoesNothingElse_AndWhatContinuesItConflicts()
    {
        var id = JobId.New(T0);
        var other = JobId.New(T0);
        await Store.SubmitAsync(Job(id, T0));
        await Store.SubmitAsync(Job(other, T0));
        var stale = await StateAsync(Store, id);
        Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(Commit(stale, [Succeeded("winner", T0)]))).Outcome);

        // Planned on the stale state: refused; the commit planned after it continues a log that never was: refused too.
        var refused = Commit(stale, [Succeeded("late", T0)]);
        var continuing = Commit(JobStateReducer.Apply(stale, refused.Events), [Succeeded("after-late", T0)]);
        var unrelated = Commit(await StateAsync(Store, other), [Succeeded("o1", T0)], enqueue: [Work(new StepRef("o2", 1, 1), T0)]);

        var results = await Task.WhenAll(Store.CommitInOrder([refused, continuing, unrelated]));

        Assert.Equal([CommitOutcome.Conflict, CommitOutcome.Conflict, CommitOutcome.Committed], results.Select(r => r.Outcome));
        Assert.Equal(["winner"], (await ToListAsync(Store.ReadEventsAsync(id, 2))).Select(e => e.StepId));
        Assert.Equal(["o1"], (await ToListAsync(Store.ReadEventsAsync(other, 2))).Select(e => e.StepId));
        Assert.Equal(["o2#1", "s1#1"], await ClaimKeysAsync(Store, other, T0));
        Assert.True((await AuditVerifier.VerifyAsync(Store, id)).Intact);
    }

    [Fact]
    public async Task CommitInOrder_ChainedStepCommitsOfOneJob_AcknowledgeEachItem_AndLeaseTheSuccessorOfTheLast()
    {
        var (id, branches, state) = await ThreeLeasedBranchesAsync();
        var other = JobId.New(T0.AddMilliseconds(1));
        await Store.SubmitAsync(Job(other, T0));

        // Three branches finished together: the first goes on to a step of its own, the second ends, the last one leases
        // the join; each successor to the worker that ran the branch.
        var q1 = new NewWorkItem { Step = new StepRef("q1", 1, 1), AvailableAt = T0, LeaseOwner = "w1", LeaseExpiresAt = T0.AddSeconds(30) };
        var p1 = Commit(state, [Succeeded("p1", T0.AddMilliseconds(10))], ack: branches[0].Lease, enqueue: [q1]);
        var afterP1 = JobStateReducer.Apply(state, p1.Events);
        var p2 = Commit(afterP1, [Succeeded("p2", T0.AddMilliseconds(11))], ack: branches[1].Lease);
        var afterP2 = JobStateReducer.Apply(afterP1, p2.Events);
        var join = new NewWorkItem { Step = new StepRef("join", 1, 1), AvailableAt = T0, LeaseOwner = "w1", LeaseExpiresAt = T0.AddSeconds(30) };
        var p3 = Commit(afterP2, [Succeeded("p3", T0.AddMilliseconds(12))], ack: branches[2].Lease, enqueue: [join]);
        var unrelated = Commit(await StateAsync(Store, other), [Succeeded("o1", T0)]);

        var results = await Task.WhenAll(Store.CommitInOrder([p1, p2, p3, unrelated]));

        Assert.All(results, r => Assert.Equal(CommitOutcome.Committed, r.Outcome));
        Assert.Equal(("q1#1", "w1"), (Assert.Single(results[0].LeasedItems).Step.WorkKey, results[0].LeasedItems[0].Lease.Owner));
        Assert.Empty(results[1].LeasedItems);
        var leased = Assert.Single(results[2].LeasedItems);
        Assert.Equal(("join#1", "w1"), (leased.Step.WorkKey, leased.Lease.Owner));
        Assert.Equal(["p1", "p2", "p3"], (await ToListAsync(Store.ReadEventsAsync(id, state.Seq))).Select(e => e.StepId));
        Assert.Equal(p3.Events[^1].Seq, (await Store.GetJobAsync(id))!.LastSeq);
        Assert.Equal(["o1"], (await ToListAsync(Store.ReadEventsAsync(other, 2))).Select(e => e.StepId));
        var queue = await Store.GetQueueSummaryAsync(id, T0);
        Assert.Equal((0, 2), (queue.Ready, queue.Leased));

        // The join runs on the lease the last commit gave it, and ends the job (dropping q1, still pending).
        var afterP3 = JobStateReducer.Apply(afterP2, p3.Events);
        var end = Commit(afterP3, [Succeeded("join", T0.AddMilliseconds(13)), EventFactory.Job(EventTypes.JobCompleted, new JobCompletedPayload(13), T0.AddMilliseconds(13))],
            ack: leased.Lease, status: JobStatus.Completed, drop: true);
        Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(end)).Outcome);
        Assert.Equal(JobStatus.Completed, (await Store.GetJobAsync(id))!.Status);
        Assert.Equal((0, 0), ((await Store.GetQueueSummaryAsync(id, T0)).Ready, (await Store.GetQueueSummaryAsync(id, T0)).Leased));
        Assert.True((await AuditVerifier.VerifyAsync(Store, id)).Intact);
        Assert.True((await AuditVerifier.VerifyAsync(Store, other)).Intact);
    }

    [Fact]
    public async Task CommitInOrder_ALostLeaseAmongChainedStepCommits_RefusesIt_KeepsWhatCameBefore_AndWhatContinuesItConflicts()
    {
        var (id, branches, state) = await ThreeLeasedBranchesAsync();
        var p1 = Commit(state, [Succeeded("p1", T0.AddMilliseconds(10))], ack: branches[0].Lease);
        var afterP1 = JobStateReducer.Apply(state, p1.Events);
        var lost = branches[1].Lease with { Token = branches[1].Lease.Token + 7 };
        var p2 = Commit(afterP1, [Succeeded("p2", T0.AddMilliseconds(11))], ack: lost);
        var p3 = Commit(JobStateReducer.Apply(afterP1, p2.Events), [Succeeded("p3", T0.AddMilliseconds(12))], ack: branches[2].Lease);

        var results = await Task.WhenAll(Store.CommitInOrder([p1, p2, p3]));

        Assert.Equal([CommitOutcome.Committed, CommitOutcome.LeaseLost, CommitOutcome.Conflict], results.Select(r => r.Outcome));
        Assert.Equal(["p1"], (await ToListAsync(Store.ReadEventsAsync(id, state.Seq))).Select(e => e.StepId));
        Assert.Equal(p1.Events[^1].Seq, (await Store.GetJobAsync(id))!.LastSeq);
        // The refused branches keep their items, leased as before; the acknowledged one's is gone.
        var queue = await Store.GetQueueSummaryAsync(id, T0);
        Assert.Equal((0, 2), (queue.Ready, queue.Leased));
        Assert.True((await AuditVerifier.VerifyAsync(Store, id)).Intact);
    }

    /// <summary>A job whose first step fanned out to p1, p2 and p3, each leased to <c>w1</c>; and the job's state then.</summary>
    private async Task<(JobId Id, IReadOnlyList<WorkItem> Branches, JobState State)> ThreeLeasedBranchesAsync()
    {
        var id = JobId.New(T0);
        await Store.SubmitAsync(Job(id, T0));
        var entry = Assert.Single(await Store.ClaimAsync(Claim("w1", T0, root: id)));
        var fan = Commit(await StateAsync(Store, id), [Succeeded("s1", T0)], ack: entry.Lease,
            enqueue: [Work(new StepRef("p1", 1, 1), T0), Work(new StepRef("p2", 1, 1), T0), Work(new StepRef("p3", 1, 1), T0)]);
        Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(fan)).Outcome);
        var branches = (await Store.ClaimAsync(Claim("w1", T0, root: id))).OrderBy(i => i.Step.StepId, StringComparer.Ordinal).ToList();
        Assert.Equal(["p1", "p2", "p3"], branches.Select(b => b.Step.StepId));
        return (id, branches, await StateAsync(Store, id));
    }

    [Fact]
    public async Task Commit_UnknownJob_NotFound()
    {
        var id = JobId.New(T0);
        var fake = JobStateReducer.Start(EventChain.Seal(id, 0, EventChain.GenesisHash, [EventFactory.Job(EventTypes.JobSubmitted, new JobSubmittedPayload("w", 1, "h", "t", "s", null, null, null, null, "x", 0), T0)])[0]);
        var result = await Store.CommitAsync(Commit(fake, [Succeeded("s1", T0)]));
        Assert.Equal(CommitOutcome.NotFound, result.Outcome);
    }

    [Fact]
    public async Task Claim_LeasesItem_AppendsStepStarted_AndHidesItFromOthers()
    {
        var id = JobId.New(T0);
        await Store.SubmitAsync(Job(id, T0));
        var claimed = Assert.Single(await Store.ClaimAsync(Claim("w1", T0)));
        Assert.Equal(id, claimed.JobId);
        Assert.Equal(new StepRef("s1", 1, 1), claimed.Step);
        Assert.Equal(1, claimed.Deliveries);
        Assert.Equal("w1", claimed.Lease.Owner);
        Assert.Empty(await Store.ClaimAsync(Claim("w2", T0.AddSeconds(1))));
        var events = await ToListAsync(Store.ReadEventsAsync(id));
        var started = events[^1];
        Assert.Equal(EventTypes.StepStarted, started.Type);
        Assert.Equal("s1", started.StepId);
        Assert.Equal("w1", started.GetPayload<StepStartedPayload>().Worker);
        Assert.Equal(JobStatus.Running, (await Store.GetJobAsync(id))!.Status);
        Assert.True((await AuditVerifier.VerifyAsync(Store, id)).Intact);
    }

    [Fact]
    public async Task Claim_AfterLeaseExpiry_TakesOver_AndOldLeaseCannotAck()
    {
        var id = JobId.New(T0);
        await Store.SubmitAsync(Job(id, T0));
        var first = Assert.Single(await Store.ClaimAsync(Claim("w1", T0, lease: TimeSpan.FromSeconds(10))));
        Assert.Empty(await Store.ClaimAsync(Claim("w2", T0.AddSeconds(9))));
        var second = Assert.Single(await Store.ClaimAsync(Claim("w2", T0.AddSeconds(11))));
        Assert.Equal(first.Lease.ItemId, second.Lease.ItemId);
        Assert.Equal(2, second.Deliveries);
        Assert.True(second.Lease.Token > first.Lease.Token);

        var state = await StateAsync(Store, id);
        var stale = await Store.CommitAsync(Commit(state, [Succeeded("s1", T0)], ack: first.Lease));
        Assert.Equal(CommitOutcome.LeaseLost, stale.Outcome);
        var fresh = await Store.CommitAsync(Commit(state, [Succeeded("s1", T0)], ack: second.Lease));
        Assert.Equal(CommitOutcome.Committed, fresh.Outcome);
        Assert.True((await Store.GetQueueSummaryAsync(id, T0.AddSeconds(12))).IsEmpty);
    }

    [Fact]
    public async Task QueueSummary_CountsSystemItems_ButNotATimerBeforeItFires()
    {
        var id = JobId.New(T0);
        await Store.SubmitAsync(Job(id, T0));
        var entry = Assert.Single(await Store.ClaimAsync(Claim("w1", T0)));
        var state = await StateAsync(Store, id);
        var expiry = T0.AddHours(1);
        Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(Commit(state, [Succeeded(entry.Step.StepId, T0)], ack: entry.Lease, enqueue:
        [
            Work(new StepRef(SystemItems.ChildEnded, 1, 1, "sub/0"), T0),
            Work(new StepRef(SystemItems.ApprovalExpiry, 1, 1, "a-1"), expiry),
        ]))).Outcome);

        // A child's end is work for the parent: a run "until idle" must not stop before it is handled.
        var now = await Store.GetQueueSummaryAsync(id, T0);
        Assert.Equal((1, 0, 0), (now.Ready, now.Delayed, now.Leased));
        Assert.False((await Store.GetQueueSummaryAsync(null, T0)).IsEmpty);

        var notice = Assert.Single(await Store.ClaimAsync(Claim("w1", T0)));
        Assert.Equal(SystemItems.ChildEnded, notice.Step.StepId);
        var leased = await Store.GetQueueSummaryAsync(id, T0);
        Assert.Equal((0, 0, 1), (leased.Ready, leased.Delayed, leased.Leased));
        Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(Commit(await StateAsync(Store, id), [], ack: notice.Lease))).Outcome);

        // The expiry an hour away is not: only once it fires.
        Assert.True((await Store.GetQueueSummaryAsync(id, T0)).IsEmpty);
        Assert.Null((await Store.GetQueueSummaryAsync(id, T0)).NextVisibleAt);
        Assert.Equal(1, (await Store.GetQueueSummaryAsync(id, expiry)).Ready);
    }

    [Fact]
    public async Task Claim_DeadOwner_IsTakenOverBeforeExpiry()
    {
        var id = JobId.New(T0);
        await Store.SubmitAsync(Job(id, T0));
        Assert.Single(await Store.ClaimAsync(Claim("dead-worker", T0)));
        Assert.Empty(await Store.ClaimAsync(Claim("w2", T0.AddSeconds(1))));
        var taken = Assert.Single(await Store.ClaimAsync(Claim("w2", T0.AddSeconds(1), dead: ["dead-worker"])));
        Assert.Equal("w2", taken.Lease.Owner);
        Assert.Equal(2, taken.Deliveries);
    }

    [Fact]
    public async Task Claim_RespectsPriorityThenAvailability()
    {
        var low = JobId.New(T0);
        var high = JobId.New(T0.AddMilliseconds(1));
        await Store.SubmitAsync(Job(low, T0, priority: 0));
        await Store.SubmitAsync(Job(high, T0.AddMilliseconds(1), priority: 5));
        var first = Assert.Single(await Store.ClaimAsync(Claim("w", T0.AddSeconds(1), max: 1)));
        Assert.Equal(high, first.JobId);
        var second = Assert.Single(await Store.ClaimAsync(Claim("w", T0.AddSeconds(1), max: 1)));
        Assert.Equal(low, second.JobId);
    }

    [Fact]
    public async Task Claim_AFloodingTenant_DoesNotHoldBackAnotherThatSubmittedLater()
    {
        for (var i = 0; i < 40; i++) await Store.SubmitAsync(Job(JobId.New(T0.AddMilliseconds(i)), T0.AddMilliseconds(i), tenant: "acme"));
        for (var i = 0; i < 3; i++) await Store.SubmitAsync(Job(JobId.New(T0.AddSeconds(1).AddMilliseconds(i)), T0.AddSeconds(1).AddMilliseconds(i), tenant: "beta"));
        var tenants = new List<string>();
        for (var i = 0; i < 8; i++) tenants.Add(Assert.Single(await Store.ClaimAsync(Claim("w", T0.AddSeconds(2), max: 1))).Tenant);
        Assert.Equal(["acme", "beta", "acme", "beta", "acme", "beta", "acme", "acme"], tenants);
    }

    [Fact]
    public async Task Claim_ABatch_TakesOneItemOfEachTenantBeforeASecondOfAny()
    {
        for (var i = 0; i < 5; i++) await Store.SubmitAsync(Job(JobId.New(T0.AddMilliseconds(i)), T0.AddMilliseconds(i), tenant: "acme"));
        for (var i = 0; i < 5; i++) await Store.SubmitAsync(Job(JobId.New(T0.AddMilliseconds(10 + i)), T0.AddMilliseconds(10 + i), tenant: "beta"));
        await Store.SubmitAsync(Job(JobId.New(T0.AddMilliseconds(20)), T0.AddMilliseconds(20), tenant: "cyan"));
        var first = await Store.ClaimAsync(Claim("w", T0.AddSeconds(1), max: 4));
        Assert.Equal(["acme", "beta", "cyan", "acme"], first.Select(i => i.Tenant));
        // The next claim starts after the tenant served last.
        var second = await Store.ClaimAsync(Claim("w", T0.AddSeconds(1), max: 3));
        Assert.Equal(["beta", "acme", "beta"], second.Select(i => i.Tenant));
    }

    [Fact]
    public async Task Claim_InsideATenant_KeepsPriorityThenAvailability_WhileTenantsTakeTurns()
    {
        var early = JobId.New(T0);
        var urgent = JobId.New(T0.AddMilliseconds(1));
        var late = JobId.New(T0.AddMilliseconds(2));
        var other = JobId.New(T0.AddMilliseconds(3));
        await Store.SubmitAsync(Job(early, T0, tenant: "acme"));
        await Store.SubmitAsync(Job(urgent, T0.AddMilliseconds(1), tenant: "acme", priority: 5));
        await Store.SubmitAsync(Job(late, T0.AddMilliseconds(2), tenant: "acme"));
        // A higher priority in one tenant does not jump the turn of another.
        await Store.SubmitAsync(Job(other, T0.AddMilliseconds(3), tenant: "beta", priority: -5));
        var order = new List<JobId>();
        for (var i = 0; i < 4; i++) order.Add(Assert.Single(await Store.ClaimAsync(Claim("w", T0.AddSeconds(1), max: 1))).JobId);
        Assert.Equal([urgent, other, early, late], order);
    }

    [Fact]
    public async Task Claim_ATenantWithOnlyLeasedOrDelayedWork_IsSkipped_AndDeadOwnersAreTakenOverInItsTurn()
    {
        var held = JobId.New(T0);
        await Store.SubmitAsync(Job(held, T0, tenant: "acme"));
        Assert.Equal(held, Assert.Single(await Store.ClaimAsync(Claim("dead-worker", T0, max: 1))).JobId);
        var beta = JobId.New(T0.AddMilliseconds(1));
        await Store.SubmitAsync(Job(beta, T0.AddMilliseconds(1), tenant: "beta"));
        Assert.Equal(beta, Assert.Single(await Store.ClaimAsync(Claim("w", T0.AddSeconds(1), max: 5))).JobId);
        Assert.Empty(await Store.ClaimAsync(Claim("w", T0.AddSeconds(1), max: 5)));
        var taken = Assert.Single(await Store.ClaimAsync(Claim("w", T0.AddSeconds(1), max: 5, dead: ["dead-worker"])));
        Assert.Equal(held, taken.JobId);
        Assert.Equal(1, taken.LostDeliveries);
        Assert.Equal(["dead-worker"], taken.LostOwners);
    }

    [Fact]
    public async Task ASuccessorLeasedToTheSameWorker_StartsWithNoLostLeases()
    {
        var id = JobId.New(T0);
        await Store.SubmitAsync(Job(id, T0));
        Assert.Single(await Store.ClaimAsync(Claim("dead-worker", T0, max: 1, root: id)));
        var taken = Assert.Single(await Store.ClaimAsync(Claim("w", T0.AddSeconds(1), root: id, dead: ["dead-worker"])));
        Assert.Equal(1, taken.LostDeliveries);

        // s1's successor continues in its row (where the store does that): the leases s1 lost are not s2's.
        var next = new NewWorkItem { Step = new StepRef("s2", 1, 1), AvailableAt = T0.AddSeconds(1), LeaseOwner = "w", LeaseExpiresAt = T0.AddSeconds(31) };
        var result = await Store.CommitAsync(Commit(await StateAsync(Store, id), [Succeeded("s1", T0.AddSeconds(1))], ack: taken.Lease, enqueue: [next]));
        var successor = Assert.Single(result.LeasedItems);
        Assert.True(await Store.ReleaseAsync(successor.Lease, T0.AddSeconds(1)));
        var again = Assert.Single(await Store.ClaimAsync(Claim("w2", T0.AddSeconds(2), root: id)));
        Assert.Equal("s2", again.Step.StepId);
        Assert.Equal(0, again.LostDeliveries);
        Assert.Empty(again.LostOwners);
    }

    [Fact]
    public async Task AFencedJob_RefusesItsHoldersCommitsAndRenewals_AndIsNotClaimedBeforeTheFenceEnds()
    {
        var id = JobId.New(T0);
        var other = JobId.New(T0.AddMilliseconds(1));
        await Store.SubmitAsync(Job(id, T0, items: 2));
        await Store.SubmitAsync(Job(other, T0));
        var held = await Store.ClaimAsync(Claim("w", T0, max: 1, root: id));
        var item = Assert.Single(held);

        Assert.Equal(2, await Store.FenceJobAsync(id, T0.AddSeconds(30)));

        // The holder's lease is gone: its commit writes nothing, its renewal does not renew, its release releases nothing.
        var state = await StateAsync(Store, id);
        var refused = await Store.CommitAsync(Commit(state, [Succeeded(item.Step.StepId, T0.AddSeconds(1))], ack: item.Lease));
        Assert.Equal(CommitOutcome.LeaseLost, refused.Outcome);
        Assert.Equal(state.Seq, (await StateAsync(Store, id)).Seq);
        Assert.Empty(await Store.RenewLeasesAsync([item.Lease], T0.AddSeconds(60)));
        Assert.False(await Store.ReleaseAsync(item.Lease, T0));

        // Neither item of the job is claimed before the fence ends, by a live worker or in place of the holder; the other job's is.
        var claimed = await Store.ClaimAsync(Claim("w2", T0.AddSeconds(29), max: 10, dead: ["w"]));
        Assert.Equal(other, Assert.Single(claimed).JobId);
        var after = await Store.ClaimAsync(Claim("w2", T0.AddSeconds(30), max: 10, root: id));
        Assert.Equal(2, after.Count);
        Assert.All(after, i => Assert.Equal(0, i.LostDeliveries));
        Assert.Contains(after, i => i.Step == item.Step && i.Lease.Token > item.Lease.Token);

        // A job with no work, or none at all, fences nothing.
        Assert.Equal(0, await Store.FenceJobAsync(JobId.New(T0.AddSeconds(2)), T0.AddSeconds(30)));
    }

    [Fact]
    public async Task Claim_MaxItemsAndRootFilter()
    {
        var a = JobId.New(T0);
        var b = JobId.New(T0.AddMilliseconds(1));
        await Store.SubmitAsync(Job(a, T0, items: 3));
        await Store.SubmitAsync(Job(b, T0, items: 2));
        var onlyB = await Store.ClaimAsync(Claim("w", T0, max: 10, root: b));
        Assert.Equal(2, onlyB.Count);
        Assert.All(onlyB, i => Assert.Equal(b, i.JobId));
        var two = await Store.ClaimAsync(Claim("w", T0, max: 2));
        Assert.Equal(2, two.Count);
        Assert.All(two, i => Assert.Equal(a, i.JobId));
    }

    [Fact]
    public async Task DelayedItem_IsNotClaimableBeforeItsTime_AndSummaryShowsIt()
    {
        var id = JobId.New(T0);
        await Store.SubmitAsync(Job(id, T0, items: 0));
        var state = await StateAsync(Store, id);
        var later = T0.AddSeconds(5);
        await Store.CommitAsync(Commit(state, [EventFactory.Step(EventTypes.StepScheduled, new StepRef("r", 1, 2), new StepScheduledPayload("code", "retry", "r", later), T0)],
            enqueue: [new NewWorkItem { Step = new StepRef("r", 1, 2), AvailableAt = later }]));
        Assert.Empty(await Store.ClaimAsync(Claim("w", T0.AddSeconds(4))));
        var summary = await Store.GetQueueSummaryAsync(id, T0.AddSeconds(4));
        Assert.Equal(0, summary.Ready);
        Assert.Equal(1, summary.Delayed);
        Assert.Equal(later, summary.NextVisibleAt);
        Assert.False(summary.IsEmpty);
        var item = Assert.Single(await Store.ClaimAsync(Claim("w", later)));
        Assert.Equal(2, item.Step.Attempt);
    }

    [Fact]
    public async Task Commit_EnqueueLeasedToSelf_ReturnsLeasedItem_NotClaimableByOthers()
    {
        var id = JobId.New(T0);
        await Store.SubmitAsync(Job(id, T0));
        var claimed = Assert.Single(await Store.ClaimAsync(Claim("w1", T0)));
        var state = await StateAsync(Store, id);
        var next = new StepRef("s2", 1, 1);
        var result = await Store.CommitAsync(Commit(state,
            [Succeeded("s1", T0), EventFactory.Step(EventTypes.StepScheduled, next, new StepScheduledPayload("code", "route", "s1", null), T0), StoreEvents.StepStarted(next, "w1", 1, T0)],
            ack: claimed.Lease,
            enqueue: [new NewWorkItem { Step = next, AvailableAt = T0, LeaseOwner = "w1", LeaseExpiresAt = T0.AddSeconds(30) }]));
        Assert.Equal(CommitOutcome.Committed, result.Outcome);
        var leased = Assert.Single(result.LeasedItems);
        Assert.Equal(next, leased.Step);
        Assert.Equal("w1", leased.Lease.Owner);
        Assert.Equal(1, leased.Deliveries);
        Assert.Empty(await Store.ClaimAsync(Claim("w2", T0.AddSeconds(1))));
        var done = await StateAsync(Store, id);
        Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(Commit(done, [Succeeded("s2", T0)], ack: leased.Lease, status: JobStatus.Completed))).Outcome);
        Assert.True((await Store.GetQueueSummaryAsync(id, T0.AddSeconds(1))).IsEmpty);
    }

    [Fact]
    public async Task Commit_EnqueueLeasedToSelf_FencesThePreviousLease_AndIsTakenOverAfterACrash()
    {
        var id = JobId.New(T0);
        await Store.SubmitAsync(Job(id, T0));
        var claimed = Assert.Single(await Store.ClaimAsync(Claim("w1", T0, lease: TimeSpan.FromSeconds(10))));
        var state = await StateAsync(Store, id);
        var next = new StepRef("s2", 1, 1);
        var result = await Store.CommitAsync(Commit(state,
            [Succeeded("s1", T0), EventFactory.Step(EventTypes.StepScheduled, next, new StepScheduledPayload("code", "route", "s1", null), T0), StoreEvents.StepStarted(next, "w1", 1, T0)],
            ack: claimed.Lease,
            enqueue: [new NewWorkItem { Step = next, AvailableAt = T0, LeaseOwner = "w1", LeaseExpiresAt = T0.AddSeconds(10) }]));
        var leased = Assert.Single(result.LeasedItems);

        // The acknowledged lease no longer acknowledges anything.
        var after = await StateAsync(Store, id);
        Assert.Equal(CommitOutcome.LeaseLost, (await Store.CommitAsync(Commit(after, [Succeeded("s2", T0)], ack: claimed.Lease))).Outcome);

        // The worker dies: once the lease runs out another worker takes the successor over, not the finished step.
        Assert.Empty(await Store.ClaimAsync(Claim("w2", T0.AddSeconds(5))));
        var taken = Assert.Single(await Store.ClaimAsync(Claim("w2", T0.AddSeconds(11))));
        Assert.Equal(next, taken.Step);
        Assert.Equal(2, taken.Deliveries);
        var now = await StateAsync(Store, id);
        Assert.Equal(CommitOutcome.LeaseLost, (await Store.CommitAsync(Commit(now, [Succeeded("s2", T0)], ack: leased.Lease))).Outcome);
        Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(Commit(now, [Succeeded("s2", T0)], ack: taken.Lease, status: JobStatus.Completed))).Outcome);
        Assert.True((await Store.GetQueueSummaryAsync(id, T0.AddSeconds(12))).IsEmpty);
        Assert.True((await AuditVerifier.VerifyAsync(Store, id)).Intact);
    }

    [Fact]
    public async Task Submit_WithAnItemLeasedToTheSubmitter_ReturnsIt_AndHidesItUntilItsLeaseExpires()
    {
        var id = JobId.New(T0);
        var job = Job(id, T0);
        var entry = new StepRef("s1", 1, 1);
        var events = EventChain.Seal(id, 0, EventChain.GenesisHash,
        [
            EventFactory.Job(EventTypes.JobSubmitted, new JobSubmittedPayload("w", 1, "sha256:def", "default", "tester", null, null, null, null, "trace", 0), T0),
            EventFactory.Step(EventTypes.StepScheduled, entry, new StepScheduledPayload("code", "entry", null, null), T0),
            StoreEvents.StepStarted(entry, "w1", 1, T0),
        ]);
        var record = await Store.SubmitAsync(job with
        {
            Events = events,
            Status = JobStatus.Running,
            WorkItems = [new NewWorkItem { Step = entry, AvailableAt = T0, LeaseOwner = "w1", LeaseExpiresAt = T0.AddSeconds(10) }],
        });
        var leased = Assert.Single(record.LeasedItems);
        Assert.Equal(entry, leased.Step);
        Assert.Equal("w1", leased.Lease.Owner);
        Assert.Empty((await Store.GetJobAsync(id))!.LeasedItems);
        Assert.Equal(JobStatus.Running, (await Store.GetJobAsync(id))!.Status);
        Assert.Empty(await Store.ClaimAsync(Claim("w2", T0.AddSeconds(5))));

        var state = await StateAsync(Store, id);
        Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(Commit(state, [Succeeded("s1", T0)], ack: leased.Lease, status: JobStatus.Completed))).Outcome);
        Assert.Empty(await Store.ClaimAsync(Claim("w2", T0.AddSeconds(11))));
    }

    [Fact]
    public async Task Submit_LeasedItem_IsTakenOverWhenTheSubmitterDies()
    {
        var id = JobId.New(T0);
        var record = await Store.SubmitAsync(Job(id, T0) with
        {
            WorkItems = [new NewWorkItem { Step = new StepRef("s1", 1, 1), AvailableAt = T0, LeaseOwner = "w1", LeaseExpiresAt = T0.AddSeconds(10) }],
        });
        Assert.Single(record.LeasedItems);
        var taken = Assert.Single(await Store.ClaimAsync(Claim("w2", T0.AddSeconds(11))));
        Assert.Equal(2, taken.Deliveries);
        Assert.True(taken.Lease.Token > record.LeasedItems[0].Lease.Token);
    }

    [Fact]
    public async Task KeepWorkItem_ChecksLeaseButKeepsItem()
    {
        var id = JobId.New(T0);
        await Store.SubmitAsync(Job(id, T0));
        var claimed = Assert.Single(await Store.ClaimAsync(Claim("w1", T0)));
        var state = await StateAsync(Store, id);
        var mid = await Store.CommitAsync(Commit(state, [EventFactory.Step(EventTypes.ToolCallRequested, claimed.Step, new ToolCallRequestedPayload("c", "t", "sql", "write", "k", null, false), T0)], ack: claimed.Lease, keep: true));
        Assert.Equal(CommitOutcome.Committed, mid.Outcome);
        var summary = await Store.GetQueueSummaryAsync(id, T0.AddSeconds(1));
        Assert.Equal(1, summary.Leased);
        var wrong = claimed.Lease with { Token = claimed.Lease.Token + 7 };
        var state2 = await StateAsync(Store, id);
        Assert.Equal(CommitOutcome.LeaseLost, (await Store.CommitAsync(Commit(state2, [Succeeded("s1", T0)], ack: wrong, keep: true))).Outcome);
    }

    [Fact]
    public async Task DropPendingWork_RemovesEveryItemOfTheJobOnly()
    {
        var a = JobId.New(T0);
        var b = JobId.New(T0.AddMilliseconds(1));
        await Store.SubmitAsync(Job(a, T0, items: 3));
        await Store.SubmitAsync(Job(b, T0, items: 1));
        var state = await StateAsync(Store, a);
        await Store.CommitAsync(Commit(state, [EventFactory.Job(EventTypes.JobCancelled, new JobCancelledPayload("test", "me"), T0)], drop: true, status: JobStatus.Cancelled));
        Assert.True((await Store.GetQueueSummaryAsync(a, T0)).IsEmpty);
        Assert.Equal(1, (await Store.GetQueueSummaryAsync(b, T0)).Ready);
        Assert.Equal(JobStatus.Cancelled, (await Store.GetJobAsync(a))!.Status);
    }

    [Fact]
    public async Task Commit_ThatEndsTheJobUnderItsLease_DropsItsOtherItems_AndNoOtherJobs()
    {
        var a = JobId.New(T0);
        var b = JobId.New(T0.AddMilliseconds(1));
        await Store.SubmitAsync(Job(a, T0, items: 3));
        await Store.SubmitAsync(Job(b, T0, items: 1));
        var claimed = (await Store.ClaimAsync(Claim("w1", T0, max: 10))).First(i => i.JobId == a);
        var state = await StateAsync(Store, a);
        var ended = await Store.CommitAsync(Commit(state, [Succeeded(claimed.Step.StepId, T0), EventFactory.Job(EventTypes.JobCompleted, new JobCompletedPayload(1), T0)],
            ack: claimed.Lease, drop: true, status: JobStatus.Completed));
        Assert.Equal(CommitOutcome.Committed, ended.Outcome);
        Assert.True((await Store.GetQueueSummaryAsync(a, T0.AddHours(1))).IsEmpty);
        Assert.False((await Store.GetQueueSummaryAsync(b, T0.AddHours(1))).IsEmpty);
        Assert.Equal(JobStatus.Completed, (await Store.GetJobAsync(a))!.Status);
        Assert.True((await AuditVerifier.VerifyAsync(Store, a)).Intact);
    }

    [Fact]
    public async Task Commit_WithALostLeaseAndAStaleHead_IsLeaseLost_AndWritesNothing()
    {
        var id = JobId.New(T0);
        await Store.SubmitAsync(Job(id, T0));
        var claimed = Assert.Single(await Store.ClaimAsync(Claim("w1", T0, lease: TimeSpan.FromSeconds(10))));
        var before = await StateAsync(Store, id);
        var next = new StepRef("s2", 1, 1);
        var moved = await Store.CommitAsync(Commit(before, [Succeeded("s1", T0)], ack: claimed.Lease,
            enqueue: [new NewWorkItem { Step = next, AvailableAt = T0, LeaseOwner = "w1", LeaseExpiresAt = T0.AddSeconds(10) }]));
        var leased = Assert.Single(moved.LeasedItems);
        var after = await StateAsync(Store, id);

        // Both the lease and the head are stale: the lease is what is reported, and neither the log nor the item changes.
        var stale = await Store.CommitAsync(Commit(before, [Succeeded("s1", T0)], ack: claimed.Lease,
            enqueue: [new NewWorkItem { Step = new StepRef("s3", 1, 1), AvailableAt = T0, LeaseOwner = "w1", LeaseExpiresAt = T0.AddSeconds(10) }]));
        Assert.Equal(CommitOutcome.LeaseLost, stale.Outcome);
        Assert.Equal(after.Seq, (await Store.GetJobAsync(id))!.LastSeq);
        Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(Commit(after, [Succeeded("s2", T0)], ack: leased.Lease, status: JobStatus.Completed))).Outcome);
    }

    [Fact]
    public async Task Commit_WithAStaleHeadUnderAHeldLease_IsAConflict_AndLeavesTheItemAsItWas()
    {
        var id = JobId.New(T0);
        await Store.SubmitAsync(Job(id, T0));
        var claimed = Assert.Single(await Store.ClaimAsync(Claim("w1", T0, lease: TimeSpan.FromSeconds(10))));
        var before = await StateAsync(Store, id);
        // Another writer appends first.
        Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(Commit(before,
            [EventFactory.Step(EventTypes.StepScheduled, new StepRef("side", 1, 1), new StepScheduledPayload("code", "entry", null, null), T0)]))).Outcome);
        var next = new StepRef("s2", 1, 1);
        var conflict = await Store.CommitAsync(Commit(before, [Succeeded("s1", T0)], ack: claimed.Lease,
            enqueue: [new NewWorkItem { Step = next, AvailableAt = T0, LeaseOwner = "w1", LeaseExpiresAt = T0.AddSeconds(10) }]));
        Assert.Equal(CommitOutcome.Conflict, conflict.Outcome);

        // The lease still holds the same item with the same token: decided again on the newer state, the commit goes through.
        var now = await StateAsync(Store, id);
        var retried = await Store.CommitAsync(Commit(now, [Succeeded("s1", T0)], ack: claimed.Lease,
            enqueue: [new NewWorkItem { Step = next, AvailableAt = T0, LeaseOwner = "w1", LeaseExpiresAt = T0.AddSeconds(10) }]));
        Assert.Equal(CommitOutcome.Committed, retried.Outcome);
        Assert.Equal(next, Assert.Single(retried.LeasedItems).Step);
        Assert.Equal(now.Seq + 1, (await Store.GetJobAsync(id))!.LastSeq);
    }

    [Fact]
    public async Task RenewAndRelease_FollowTheFencingToken()
    {
        var id = JobId.New(T0);
        await Store.SubmitAsync(Job(id, T0));
        var claimed = Assert.Single(await Store.ClaimAsync(Claim("w1", T0, lease: TimeSpan.FromSeconds(10))));
        var renewed = await Store.RenewLeasesAsync([claimed.Lease, claimed.Lease with { Token = 99 }], T0.AddSeconds(60));
        Assert.Equal([claimed.Lease.ItemId], renewed);
        Assert.Empty(await Store.ClaimAsync(Claim("w2", T0.AddSeconds(30))));
        Assert.False(await Store.ReleaseAsync(claimed.Lease with { Owner = "other" }, T0));
        Assert.True(await Store.ReleaseAsync(claimed.Lease, T0.AddSeconds(31)));
        var again = Assert.Single(await Store.ClaimAsync(Claim("w2", T0.AddSeconds(31))));
        Assert.Equal(2, again.Deliveries);
    }

    [Fact]
    public async Task Snapshot_RoundTrips()
    {
        var id = JobId.New(T0);
        await Store.SubmitAsync(Job(id, T0));
        var state = await StateAsync(Store, id);
        var events = EventChain.Seal(id, state.Seq, state.HeadHash, [Succeeded("s1", T0)]);
        var post = JobStateReducer.Apply(state, events);
        var snapshot = StateSnapshotCodec.Encode(post);
        Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(new JobCommit
        {
            JobId = id, ExpectedSeq = state.Seq, ExpectedHeadHash = state.HeadHash, Events = events, Status = JobStatus.Running, Snapshot = snapshot,
        })).Outcome);
        var read = await Store.GetSnapshotAsync(id);
        Assert.NotNull(read);
        Assert.Equal(post.Seq, read!.Seq);
        var decoded = StateSnapshotCodec.Decode(read);
        Assert.NotNull(decoded);
        Assert.Equal(post.Seq, decoded!.Seq);
        Assert.Equal(post.HeadHash, decoded.HeadHash);
        Assert.Equal("succeeded", decoded.Steps["s1"].Status);
    }

    [Fact]
    public async Task ReadEvents_AfterSeq_GivesTheRestWithCorrectPrevHash()
    {
        var id = JobId.New(T0);
        await Store.SubmitAsync(Job(id, T0, items: 3));
        var all = await ToListAsync(Store.ReadEventsAsync(id));
        var tail = await ToListAsync(Store.ReadEventsAsync(id, 2));
        Assert.Equal([3L, 4L], tail.Select(e => e.Seq));
        Assert.Equal(all[1].Hash, tail[0].PrevHash);
        Assert.Equal(Encoding.UTF8.GetString(all[2].Payload.Span), Encoding.UTF8.GetString(tail[0].Payload.Span));
        Assert.Empty(await ToListAsync(Store.ReadEventsAsync(id, 99)));
        Assert.Empty(await ToListAsync(Store.ReadEventsAsync(JobId.New(T0))));
    }

    [Fact]
    public async Task ReadEvents_PreserveEveryEnvelopeField()
    {
        var id = JobId.New(T0);
        await Store.SubmitAsync(Job(id, T0));
        var state = await StateAsync(Store, id);
        var e = EventFactory.Step(EventTypes.ModelCallSucceeded, new StepRef("s1", 2, 3, "p#1/a"),
            new ModelCallSucceededPayload("c1", "fast", "scripted", "m-1", "{}", 10, 5, 0.001m, 2.5), T0.AddMilliseconds(123), agent: "x@2", promptHash: "sha256:ab", model: "m-1", policy: "p@7");
        await Store.CommitAsync(Commit(state, [e]));
        var read = (await ToListAsync(Store.ReadEventsAsync(id)))[^1];
        Assert.Equal("s1", read.StepId);
        Assert.Equal(2, read.Visit);
        Assert.Equal(3, read.Attempt);
        Assert.Equal("p#1/a", read.Scope);
        Assert.Equal(T0.AddMilliseconds(123), read.Timestamp);
        Assert.Equal("x@2", read.Agent);
        Assert.Equal("sha256:ab", read.PromptHash);
        Assert.Equal("m-1", read.Model);
        Assert.Equal("p@7", read.Policy);
        Assert.Equal(10, read.GetPayload<ModelCallSucceededPayload>().InputTokens);
        Assert.True((await AuditVerifier.VerifyAsync(Store, id)).Intact);
    }

    [Fact]
    public async Task ListJobs_NewestFirst_WithFilters()
    {
        var ids = new List<JobId>();
        for (var i = 0; i < 5; i++)
        {
            var id = JobId.New(T0.AddSeconds(i));
            ids.Add(id);
            await Store.SubmitAsync(Job(id, T0.AddSeconds(i), tenant: i % 2 == 0 ? "acme" : "globex"));
        }

        var all = await Store.ListJobsAsync(new JobQuery());
        Assert.Equal(ids.AsEnumerable().Reverse(), all.Select(j => j.JobId));
        var acme = await Store.ListJobsAsync(new JobQuery { Tenant = "acme" });
        Assert.Equal(3, acme.Count);
        Assert.All(acme, j => Assert.Equal("acme", j.Tenant));
        Assert.Equal(2, (await Store.ListJobsAsync(new JobQuery { Limit = 2 })).Count);
        Assert.Equal(5, (await Store.ListJobsAsync(new JobQuery { Status = JobStatus.Queued })).Count);
        Assert.Empty(await Store.ListJobsAsync(new JobQuery { Status = JobStatus.Failed }));
    }

    [Fact]
    public async Task ChildJob_SharesRoot_AndIsListedUnderItsParent()
    {
        var parent = JobId.New(T0);
        var child = JobId.New(T0.AddMilliseconds(1));
        await Store.SubmitAsync(Job(parent, T0, items: 0));
        await Store.SubmitAsync(Job(child, T0, root: parent, parent: parent));
        Assert.Equal(parent, (await Store.GetJobAsync(child))!.RootJobId);
        Assert.Equal(child, Assert.Single(await Store.ListJobsAsync(new JobQuery { ParentJobId = parent })).JobId);
        var claimed = Assert.Single(await Store.ClaimAsync(Claim("w", T0, root: parent)));
        Assert.Equal(child, claimed.JobId);
    }

    [Fact]
    public async Task Commit_EventsThatDoNotContinueTheLog_AreRefused()
    {
        var id = JobId.New(T0);
        await Store.SubmitAsync(Job(id, T0));
        var state = await StateAsync(Store, id);
        var wrongSeal = EventChain.Seal(id, state.Seq + 1, state.HeadHash, [Succeeded("s1", T0)]);
        await Assert.ThrowsAnyAsync<ArgumentException>(async () => await Store.CommitAsync(new JobCommit
        {
            JobId = id, ExpectedSeq = state.Seq, ExpectedHeadHash = state.HeadHash, Events = wrongSeal, Status = JobStatus.Running,
        }));
        Assert.True((await AuditVerifier.VerifyAsync(Store, id)).Intact);
    }

    [Fact]
    public async Task KillSwitches_SetListClear_AndSeedOnlyOnce()
    {
        Assert.Empty(await Store.ListKillSwitchesAsync());
        await Store.SetKillSwitchAsync(new KillSwitches.KillSwitch("tool:web.*", "outage", "ops", T0));
        await Store.SetKillSwitchAsync(new KillSwitches.KillSwitch("agent:extractor", null, "ops", T0));
        var list = await Store.ListKillSwitchesAsync();
        Assert.Equal(["agent:extractor", "tool:web.*"], list.Select(s => s.Target));
        Assert.Equal("outage", list.Single(s => s.Target == "tool:web.*").Reason);
        Assert.True(await Store.ClearKillSwitchAsync("agent:extractor"));
        Assert.False(await Store.ClearKillSwitchAsync("agent:extractor"));

        await Store.SeedKillSwitchesAsync("policy@1", [new KillSwitches.KillSwitch("step:auction", "initial", "policy@1", T0)]);
        Assert.Contains(await Store.ListKillSwitchesAsync(), s => s.Target == "step:auction");
        Assert.True(await Store.ClearKillSwitchAsync("step:auction"));
        await Store.SeedKillSwitchesAsync("policy@1", [new KillSwitches.KillSwitch("step:auction", "initial", "policy@1", T0)]);
        Assert.DoesNotContain(await Store.ListKillSwitchesAsync(), s => s.Target == "step:auction");
    }

    [Fact]
    public async Task KillSwitches_OfOneTenant_AreKeptApartFromEveryTenantsAndFromOtherTenants()
    {
        await Store.SetKillSwitchAsync(new KillSwitches.KillSwitch("tool:web.*", "all", "ops", T0));
        await Store.SetKillSwitchAsync(new KillSwitches.KillSwitch("tool:web.*", "acme's", "olga", T0, Tenant: "acme"));
        await Store.SetKillSwitchAsync(new KillSwitches.KillSwitch("tool:web.*", "globex's", "gus", T0, Tenant: "globex"));
        var list = await Store.ListKillSwitchesAsync();
        Assert.Equal(3, list.Count);
        Assert.Equal("acme's", list.Single(s => s.Tenant == "acme").Reason);
        Assert.Equal("all", list.Single(s => s.Tenant is null).Reason);
        Assert.True(list.Single(s => s.Tenant == "acme").Covers("acme"));
        Assert.False(list.Single(s => s.Tenant == "acme").Covers("globex"));
        Assert.True(list.Single(s => s.Tenant is null).Covers("globex"));

        Assert.True(await Store.ClearKillSwitchAsync("tool:web.*", "acme"));
        Assert.False(await Store.ClearKillSwitchAsync("tool:web.*", "acme"));
        Assert.Equal([null, "globex"], (await Store.ListKillSwitchesAsync()).Select(s => s.Tenant).OrderBy(t => t, StringComparer.Ordinal));
        Assert.True(await Store.ClearKillSwitchAsync("tool:web.*"));
        Assert.Equal("globex", Assert.Single(await Store.ListKillSwitchesAsync()).Tenant);
    }

    [Fact]
    public async Task Submit_OverConcurrentQuota_IsRefusedAndCreatesNothing()
    {
        var quota = new TenantQuota(ConcurrentJobs: 2, JobsPerMinute: null);
        await Store.SubmitAsync(Job(JobId.New(T0), T0, tenant: "acme") with { Quota = quota });
        await Store.SubmitAsync(Job(JobId.New(T0.AddMilliseconds(1)), T0, tenant: "acme") with { Quota = quota });
        var third = JobId.New(T0.AddMilliseconds(2));
        var e = await Assert.ThrowsAsync<QuotaExceededException>(async () => await Store.SubmitAsync(Job(third, T0, tenant: "acme") with { Quota = quota }));
        Assert.Equal("concurrent_jobs", e.Quota);
        Assert.Equal(2, e.Current);
        Assert.Equal(QuotaExceededException.DefaultRetryAfter, e.RetryAfter);
        Assert.Null(await Store.GetJobAsync(third));
        await Store.SubmitAsync(Job(JobId.New(T0.AddMilliseconds(3)), T0, tenant: "globex") with { Quota = quota });
    }

    [Fact]
    public async Task Submit_ConcurrentQuota_FreesASlotWhenAJobEnds()
    {
        var quota = new TenantQuota(ConcurrentJobs: 1, JobsPerMinute: null);
        var first = JobId.New(T0);
        await Store.SubmitAsync(Job(first, T0, tenant: "acme") with { Quota = quota });
        await Assert.ThrowsAsync<QuotaExceededException>(async () => await Store.SubmitAsync(Job(JobId.New(T0.AddMilliseconds(1)), T0, tenant: "acme") with { Quota = quota }));
        var item = Assert.Single(await Store.ClaimAsync(Claim("w", T0)));
        var state = await StateAsync(Store, first);
        Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(Commit(state, [Succeeded("s1", T0)], ack: item.Lease, status: JobStatus.Completed))).Outcome);
        await Store.SubmitAsync(Job(JobId.New(T0.AddMilliseconds(2)), T0, tenant: "acme") with { Quota = quota });
    }

    [Theory]
    [InlineData(5, null)]
    [InlineData(null, 7)]
    public async Task Submit_ManyAtOnce_NeverPassMoreThanTheQuota(int? concurrent, int? perMinute)
    {
        var quota = new TenantQuota(concurrent, perMinute);
        var attempts = Enumerable.Range(0, 24).Select(i => Task.Run(async () =>
        {
            try
            {
                await Store.SubmitAsync(Job(JobId.New(T0.AddMilliseconds(i)), T0.AddMilliseconds(i), tenant: "acme") with { Quota = quota });
                return true;
            }
            catch (QuotaExceededException)
            {
                return false;
            }
        })).ToList();
        var passed = (await Task.WhenAll(attempts)).Count(ok => ok);
        Assert.Equal(concurrent ?? perMinute, passed);
        Assert.Equal(concurrent ?? perMinute, (await Store.ListJobsAsync(new JobQuery { Tenant = "acme", Limit = 100 })).Count);
    }

    [Fact]
    public async Task Submit_OverRateQuota_SaysHowLongUntilASubmissionLeavesTheMinute()
    {
        var quota = new TenantQuota(ConcurrentJobs: null, JobsPerMinute: 3);
        foreach (var at in new[] { 0, 10, 20 }) await Store.SubmitAsync(Job(JobId.New(T0.AddSeconds(at)), T0.AddSeconds(at), tenant: "acme") with { Quota = quota });
        var e = await Assert.ThrowsAsync<QuotaExceededException>(async () => await Store.SubmitAsync(Job(JobId.New(T0.AddSeconds(45)), T0.AddSeconds(45), tenant: "acme") with { Quota = quota }));
        Assert.Equal("jobs_per_minute", e.Quota);
        Assert.Equal(3, e.Current);
        // The submission of T0 leaves the window at T0 + 60 s, 15 s after the refused one.
        Assert.Equal(TimeSpan.FromSeconds(15), e.RetryAfter);
        Assert.Contains("try again in 15 s", e.Message);
        await Assert.ThrowsAsync<QuotaExceededException>(async () => await Store.SubmitAsync(Job(JobId.New(T0.AddSeconds(59)), T0.AddSeconds(59), tenant: "acme") with { Quota = quota }));
        await Store.SubmitAsync(Job(JobId.New(T0.AddSeconds(60)), T0.AddSeconds(60), tenant: "acme") with { Quota = quota });
    }

    [Fact]
    public async Task Submit_OverRateQuota_IsRefused_UntilTheMinutePasses()
    {
        var quota = new TenantQuota(ConcurrentJobs: null, JobsPerMinute: 2);
        await Store.SubmitAsync(Job(JobId.New(T0), T0, tenant: "acme") with { Quota = quota });
        await Store.SubmitAsync(Job(JobId.New(T0.AddSeconds(1)), T0.AddSeconds(1), tenant: "acme") with { Quota = quota });
        await Assert.ThrowsAsync<QuotaExceededException>(async () => await Store.SubmitAsync(Job(JobId.New(T0.AddSeconds(2)), T0.AddSeconds(2), tenant: "acme") with { Quota = quota }));
        await Store.SubmitAsync(Job(JobId.New(T0.AddSeconds(61)), T0.AddSeconds(61), tenant: "acme") with { Quota = quota });
    }

    [Fact]
    public async Task TimerItems_AreClaimableWhenDue_ButNotCountedAsPendingWork()
    {
        var id = JobId.New(T0);
        await Store.SubmitAsync(Job(id, T0, items: 0));
        var state = await StateAsync(Store, id);
        var timer = new StepRef(SystemItems.ApprovalExpiry, 1, 1, "approve#1");
        await Store.CommitAsync(Commit(state, [], enqueue: [new NewWorkItem { Step = timer, AvailableAt = T0.AddHours(1) }]));
        Assert.True((await Store.GetQueueSummaryAsync(id, T0)).IsEmpty);
        Assert.True((await Store.GetQueueSummaryAsync(null, T0)).IsEmpty);
        Assert.Empty(await Store.ClaimAsync(Claim("w", T0)));
        var due = Assert.Single(await Store.ClaimAsync(Claim("w", T0.AddHours(1))));
        Assert.Equal(timer, due.Step);
    }

    [Fact]
    public async Task DropScopes_RemoveTheScopeAndItsNestedScopes_Only()
    {
        var a = JobId.New(T0);
        var b = JobId.New(T0.AddMilliseconds(1));
        await Store.SubmitAsync(Job(a, T0, items: 0));
        await Store.SubmitAsync(Job(b, T0, items: 0));
        var state = await StateAsync(Store, a);
        StepRef[] steps =
        [
            new("a", 1, 1, "p"), new("x", 1, 1, "p/a#1"), new("pa", 1, 1), new("b", 1, 1, "q"),
            new("c", 1, 1, "a_b"), new("c", 1, 1, "axb"), new("d", 1, 1, "p0"),
        ];
        Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(Commit(state, [], enqueue: steps.Select(s => Work(s, T0)).ToList()))).Outcome);
        var other = await StateAsync(Store, b);
        Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(Commit(other, [], enqueue: [Work(new StepRef("a", 1, 1, "p"), T0)]))).Outcome);

        state = await StateAsync(Store, a);
        var dropped = await Store.CommitAsync(Commit(state, [Succeeded("s", T0)]) with { DropScopes = ["p", "a_b"] });
        Assert.Equal(CommitOutcome.Committed, dropped.Outcome);

        Assert.Equal(["axb/c#1", "p0/d#1", "pa#1", "q/b#1"], await ClaimKeysAsync(Store, a, T0));
        Assert.Equal(["p/a#1"], await ClaimKeysAsync(Store, b, T0));
        Assert.True((await AuditVerifier.VerifyAsync(Store, a)).Intact);
    }

    [Fact]
    public async Task StartJobs_CreatesTheLinkedChild_WithItsEventsAndWork_InTheParentsCommit()
    {
        var parent = JobId.New(T0);
        var child = JobId.New(T0.AddMilliseconds(1));
        await Store.SubmitAsync(Job(parent, T0));
        var claimed = Assert.Single(await Store.ClaimAsync(Claim("w1", T0)));
        var state = await StateAsync(Store, parent);
        var result = await Store.CommitAsync(Commit(state, [Succeeded("s1", T0)], ack: claimed.Lease) with
        {
            StartJobs = [Job(child, T0, items: 2, root: parent, parent: parent, definitionHash: "sha256:child")],
        });
        Assert.Equal(CommitOutcome.Committed, result.Outcome);
        Assert.Empty(result.LeasedItems);

        var parentRecord = (await Store.GetJobAsync(parent))!;
        Assert.Equal(state.Seq + 1, parentRecord.LastSeq);
        Assert.Equal(EventTypes.StepSucceeded, (await ToListAsync(Store.ReadEventsAsync(parent)))[^1].Type);

        var record = (await Store.GetJobAsync(child))!;
        Assert.Equal(parent, record.ParentJobId);
        Assert.Equal(parent, record.RootJobId);
        Assert.Equal(JobStatus.Queued, record.Status);
        Assert.Equal(3, record.LastSeq);
        Assert.Equal(child, Assert.Single(await Store.ListJobsAsync(new JobQuery { ParentJobId = parent })).JobId);
        var events = await ToListAsync(Store.ReadEventsAsync(child));
        Assert.Equal([EventTypes.JobSubmitted, EventTypes.StepScheduled, EventTypes.StepScheduled], events.Select(e => e.Type));
        Assert.NotNull(await Store.GetDefinitionAsync("sha256:child"));

        var items = await Store.ClaimAsync(Claim("w2", T0, root: parent));
        Assert.Equal(2, items.Count);
        Assert.All(items, i => Assert.Equal(child, i.JobId));
        Assert.True((await AuditVerifier.VerifyAsync(Store, parent)).Intact);
        Assert.True((await AuditVerifier.VerifyAsync(Store, child)).Intact);
    }

    [Fact]
    public async Task StartJobs_WithAnExistingChild_ConflictsAndWritesNothing()
    {
        var parent = JobId.New(T0);
        var existing = JobId.New(T0.AddMilliseconds(1));
        var fresh = JobId.New(T0.AddMilliseconds(2));
        await Store.SubmitAsync(Job(parent, T0, items: 2));
        await Store.SubmitAsync(Job(existing, T0, items: 0));
        var claimed = (await Store.ClaimAsync(Claim("w1", T0, max: 1)))[0];
        var state = await StateAsync(Store, parent);
        var before = (await Store.GetJobAsync(parent))!;
        var existingBefore = (await Store.GetJobAsync(existing))!;

        var commit = Commit(state, [Succeeded(claimed.Step.StepId, T0)], ack: claimed.Lease, enqueue: [Work(new StepRef("next", 1, 1), T0)], drop: true, status: JobStatus.Completed) with
        {
            StartJobs = [Job(fresh, T0, root: parent, parent: parent), Job(existing, T0, root: parent, parent: parent)],
            NotifyJobs = [new OtherJobWork(existing, Work(new StepRef("wake", 1, 1), T0))],
        };
        Assert.Equal(CommitOutcome.Conflict, (await Store.CommitAsync(commit)).Outcome);
        var twice = commit with { StartJobs = [Job(fresh, T0, root: parent, parent: parent), Job(fresh, T0, root: parent, parent: parent)] };
        Assert.Equal(CommitOutcome.Conflict, (await Store.CommitAsync(twice)).Outcome);

        var after = (await Store.GetJobAsync(parent))!;
        Assert.Equal(before.LastSeq, after.LastSeq);
        Assert.Equal(before.HeadHash, after.HeadHash);
        Assert.Equal(JobStatus.Running, after.Status);
        Assert.Equal(state.Seq, (await ToListAsync(Store.ReadEventsAsync(parent))).Count);
        var summary = await Store.GetQueueSummaryAsync(parent, T0.AddSeconds(1));
        Assert.Equal(1, summary.Leased);
        Assert.Equal(1, summary.Ready);
        Assert.Null(await Store.GetJobAsync(fresh));
        Assert.Empty(await Store.ListJobsAsync(new JobQuery { ParentJobId = parent }));
        var existingAfter = (await Store.GetJobAsync(existing))!;
        Assert.Null(existingAfter.ParentJobId);
        Assert.Equal(existingBefore.LastSeq, existingAfter.LastSeq);
        Assert.True((await Store.GetQueueSummaryAsync(existing, T0)).IsEmpty);

        // The acknowledged item and its lease are untouched: the same commit without the clash goes through.
        Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(commit with { StartJobs = [Job(fresh, T0, root: parent, parent: parent)] })).Outcome);
        Assert.Equal(fresh, Assert.Single(await Store.ListJobsAsync(new JobQuery { ParentJobId = parent })).JobId);
        Assert.Equal(["wake#1"], await ClaimKeysAsync(Store, existing, T0));
        Assert.True((await AuditVerifier.VerifyAsync(Store, parent)).Intact);
        Assert.True((await AuditVerifier.VerifyAsync(Store, fresh)).Intact);
    }

    [Fact]
    public async Task NotifyJobs_AddsOneItemToTheOtherJob_AndSkipsMissingJobs()
    {
        var parent = JobId.New(T0);
        var child = JobId.New(T0.AddMilliseconds(1));
        await Store.SubmitAsync(Job(parent, T0, items: 0));
        await Store.SubmitAsync(Job(child, T0, items: 0, root: parent, parent: parent));
        var parentSeq = (await Store.GetJobAsync(parent))!.LastSeq;
        var wake = new OtherJobWork(parent, Work(new StepRef("wait", 1, 1, "sub#1"), T0));
        var missing = new OtherJobWork(JobId.New(T0.AddMilliseconds(2)), Work(new StepRef("wait", 1, 1), T0));

        for (var i = 0; i < 2; i++)
        {
            var state = await StateAsync(Store, child);
            var result = await Store.CommitAsync(Commit(state, [Succeeded("s" + i, T0)], status: JobStatus.Completed) with { NotifyJobs = [wake, missing, wake] });
            Assert.Equal(CommitOutcome.Committed, result.Outcome);
        }

        Assert.Equal(1, (await Store.GetQueueSummaryAsync(parent, T0)).Ready);
        Assert.Equal(parentSeq, (await Store.GetJobAsync(parent))!.LastSeq);
        var item = Assert.Single(await Store.ClaimAsync(Claim("w", T0, root: parent)));
        Assert.Equal(parent, item.JobId);
        Assert.Equal("sub#1/wait#1", item.Step.WorkKey);
        Assert.Null(await Store.GetJobAsync(missing.JobId));

        // A notification while the item is leased is still a duplicate.
        var last = await StateAsync(Store, child);
        Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(Commit(last, [Succeeded("s9", T0)], status: JobStatus.Completed) with { NotifyJobs = [wake] })).Outcome);
        Assert.Equal(1, (await Store.GetQueueSummaryAsync(parent, T0.AddSeconds(1))).Leased);
        Assert.Empty(await Store.ClaimAsync(Claim("w", T0.AddSeconds(1), root: parent)));
        Assert.True((await AuditVerifier.VerifyAsync(Store, parent)).Intact);
        Assert.True((await AuditVerifier.VerifyAsync(Store, child)).Intact);
    }

    [Fact]
    public async Task JobTree_StartedAndWokenByCommits_KeepsItsRootAndEveryChainIntact()
    {
        var root = JobId.New(T0);
        var child = JobId.New(T0.AddMilliseconds(1));
        var grandchild = JobId.New(T0.AddMilliseconds(2));
        await Store.SubmitAsync(Job(root, T0, items: 0));
        var state = await StateAsync(Store, root);
        Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(Commit(state, [Succeeded("start", T0)]) with
        {
            StartJobs = [Job(child, T0, items: 0, root: root, parent: root)],
        })).Outcome);

        // The child commits in turn: it starts a grandchild in the same tree, wakes it at once and enqueues its own work.
        var childState = await StateAsync(Store, child);
        Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(Commit(childState, [Succeeded("fan", T0)], enqueue: [Work(new StepRef("own", 1, 1), T0)]) with
        {
            StartJobs = [Job(grandchild, T0, items: 1, root: root, parent: child)],
            NotifyJobs = [new OtherJobWork(grandchild, Work(new StepRef("woken", 1, 1), T0))],
        })).Outcome);

        Assert.Equal(root, (await Store.GetJobAsync(grandchild))!.RootJobId);
        Assert.Equal(child, (await Store.GetJobAsync(grandchild))!.ParentJobId);
        Assert.Equal(grandchild, Assert.Single(await Store.ListJobsAsync(new JobQuery { ParentJobId = child })).JobId);
        var items = await Store.ClaimAsync(Claim("w", T0, root: root));
        Assert.Equal(["own#1", "s1#1", "woken#1"], items.Select(i => i.Step.WorkKey).Order(StringComparer.Ordinal));
        Assert.Equal(grandchild, items.Single(i => i.Step.StepId == "woken").JobId);

        // The grandchild finishes and wakes its parent, which finishes and wakes the root.
        var leased = items.Single(i => i.Step.StepId == "s1");
        var g = await StateAsync(Store, grandchild);
        Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(Commit(g, [Succeeded("s1", T0)], ack: leased.Lease, status: JobStatus.Completed, drop: true) with
        {
            NotifyJobs = [new OtherJobWork(child, Work(new StepRef("joined", 1, 1), T0))],
        })).Outcome);
        var c = await StateAsync(Store, child);
        var own = items.Single(i => i.Step.StepId == "own");
        Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(Commit(c, [Succeeded("own", T0)], ack: own.Lease, status: JobStatus.Completed, drop: true) with
        {
            NotifyJobs = [new OtherJobWork(root, Work(new StepRef("joined", 1, 1), T0))],
        })).Outcome);
        var rest = Assert.Single(await Store.ClaimAsync(Claim("w2", T0.AddSeconds(60), root: root)));
        Assert.Equal(root, rest.JobId);
        Assert.Equal("joined#1", rest.Step.WorkKey);
        foreach (var id in new[] { root, child, grandchild })
        {
            Assert.True((await AuditVerifier.VerifyAsync(Store, id)).Intact);
        }
    }

    protected static async Task<List<T>> ToListAsync<T>(IAsyncEnumerable<T> source)
    {
        var list = new List<T>();
        await foreach (var x in source) list.Add(x);
        return list;
    }
}
