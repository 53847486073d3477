using Ordo.Events;
using Ordo.Queue;
using Ordo.State;
using Ordo.Storage;

namespace Ordo.Storage.Conformance;

/// <summary>Builds jobs, commits and claims for the conformance suite.</summary>
public static class StoreFixtures
{
    public static readonly DateTimeOffset T0 = new(2026, 11, 22, 10, 0, 0, TimeSpan.Zero);

    public static NewJob Job(JobId id, DateTimeOffset now, string tenant = "default", int items = 1, int priority = 0, JobId? root = null, JobId? parent = null, string definitionHash = "sha256:def")
    {
        var events = EventChain.Seal(id, 0, EventChain.GenesisHash,
        [
            EventFactory.Job(EventTypes.JobSubmitted, new JobSubmittedPayload("w", 1, definitionHash, tenant, "tester", null, null, parent?.Value, null, "trace", priority), now),
            .. Enumerable.Range(1, items).Select(i => EventFactory.Step(EventTypes.StepScheduled, new StepRef("s" + i, 1, 1), new StepScheduledPayload("code", "entry", null, null), now)),
        ]);
        return new NewJob
        {
            JobId = id, Workflow = "w", Version = 1, Tenant = tenant, Submitter = "tester",
            Definition = new DefinitionRecord(definitionHash, "w", 1, [1, 2, 3]), TraceId = "trace", Priority = priority, CreatedAt = now,
            Events = events, RootJobId = root, ParentJobId = parent,
            WorkItems = Enumerable.Range(1, items).Select(i => new NewWorkItem { Step = new StepRef("s" + i, 1, 1), AvailableAt = now, Priority = priority }).ToList(),
        };
    }

    public static async Task<JobState> StateAsync(IOrdoStore store, JobId id)
    {
        JobState? s = null;
        await foreach (var e in store.ReadEventsAsync(id))
        {
            s = s is null ? JobStateReducer.Start(e) : JobStateReducer.Apply(s, e);
        }

        return s ?? throw new InvalidOperationException("no events");
    }

    public static JobCommit Commit(JobState state, IReadOnlyList<NewEvent> events, WorkItemLease? ack = null, IReadOnlyList<NewWorkItem>? enqueue = null, bool drop = false, JobStatus status = JobStatus.Running, StateSnapshot? snapshot = null, bool keep = false)
        => new()
        {
            JobId = state.JobId, ExpectedSeq = state.Seq, ExpectedHeadHash = state.HeadHash,
            Events = EventChain.Seal(state.JobId, state.Seq, state.HeadHash, events),
            Ack = ack, Enqueue = enqueue ?? [], DropPendingWork = drop, Status = status, Snapshot = snapshot, KeepWorkItem = keep,
        };

    public static NewEvent Succeeded(string step, DateTimeOffset now, int visit = 1, int attempt = 1)
        => EventFactory.Step(EventTypes.StepSucceeded, new StepRef(step, visit, attempt), new StepSucceededPayload(Ordo.Json.Of(new { ok = true }), 1, null, null), now);

    /// <summary>A work item for <paramref name="step"/>, available at <paramref name="now"/>.</summary>
    public static NewWorkItem Work(StepRef step, DateTimeOffset now) => new() { Step = step, AvailableAt = now };

    /// <summary>The work keys of the items of <paramref name="id"/>'s tree that are ready at <paramref name="now"/>, leasing them.</summary>
    public static async Task<List<string>> ClaimKeysAsync(IOrdoStore store, JobId id, DateTimeOffset now)
        => (await store.ClaimAsync(Claim("keys", now, max: 100, root: id))).Where(i => i.JobId == id).Select(i => i.Step.WorkKey).Order(StringComparer.Ordinal).ToList();

    public static ClaimRequest Claim(string owner, DateTimeOffset now, int max = 10, JobId? root = null, IReadOnlyCollection<string>? dead = null, TimeSpan? lease = null)
        => new() { Owner = owner, MaxItems = max, LeaseDuration = lease ?? TimeSpan.FromSeconds(30), Now = now, RootJobId = root, DeadOwners = dead };
}
