using Ordo.Events;
using Ordo.Queue;
using Ordo.State;

namespace Ordo.Storage;

/// <summary>A job as the store lists it.</summary>
public sealed record JobRecord
{
    /// <summary>The job.</summary>
    public required JobId JobId { get; init; }
    /// <summary>The workflow name.</summary>
    public required string Workflow { get; init; }
    /// <summary>The pinned workflow version.</summary>
    public required int Version { get; init; }
    /// <summary>The tenant.</summary>
    public required string Tenant { get; init; }
    /// <summary>The status.</summary>
    public required JobStatus Status { get; init; }
    /// <summary>Why it failed or was cancelled.</summary>
    public string? Reason { get; init; }
    /// <summary>Who submitted it.</summary>
    public required string Submitter { get; init; }
    /// <summary>The parent job of a sub-workflow.</summary>
    public JobId? ParentJobId { get; init; }
    /// <summary>The top of the job tree (the job itself when it has no parent).</summary>
    public required JobId RootJobId { get; init; }
    /// <summary>The stored definition's content hash.</summary>
    public required string DefinitionHash { get; init; }
    /// <summary>The trace id.</summary>
    public required string TraceId { get; init; }
    /// <summary>Higher runs first.</summary>
    public int Priority { get; init; }
    /// <summary>When it was submitted.</summary>
    public required DateTimeOffset CreatedAt { get; init; }
    /// <summary>When it last changed.</summary>
    public required DateTimeOffset UpdatedAt { get; init; }
    /// <summary>The sequence number of its last event.</summary>
    public required long LastSeq { get; init; }
    /// <summary>The hash of its last event.</summary>
    public required byte[] HeadHash { get; init; }
    /// <summary>Whether it is a shadow job, or a job under one (see <see cref="NewJob.Shadow"/>). Default: false.</summary>
    public bool Shadow { get; init; }

    /// <summary>
    /// On the record <see cref="IJobJournal.SubmitAsync"/> returns: the submission's work items that were created
    /// already leased (those with <see cref="NewWorkItem.LeaseOwner"/> set), so their worker can run them without a
    /// claim. Empty on records read back from the store.
    /// </summary>
    public IReadOnlyList<WorkItem> LeasedItems { get; init; } = [];

    /// <summary><c>name@version</c>.</summary>
    public string WorkflowRef => $"{Workflow}@{Version}";
}

/// <summary>A stored workflow definition: everything a job needs to run without reading files again.</summary>
/// <param name="Hash">Content hash (<c>sha256:…</c>).</param>
/// <param name="Workflow">The workflow name.</param>
/// <param name="Version">The workflow version.</param>
/// <param name="Content">The serialized definition bundle.</param>
public sealed record DefinitionRecord(string Hash, string Workflow, int Version, byte[] Content)
{
    /// <summary>
    /// The SHA-256 of the definition's bytes as the audit log recorded them when it was stored, when the store keeps an
    /// audit log that has it: the stored bytes are checked against it too, so that a part the content hash leaves out
    /// (the <c>root</c> folder relative paths resolve in) cannot be changed unseen.
    /// </summary>
    public byte[]? LoggedDigest { get; init; }
}

/// <summary>A new job, created in one transaction with its first events and work items.</summary>
public sealed record NewJob
{
    /// <summary>The job id.</summary>
    public required JobId JobId { get; init; }
    /// <summary>The workflow name.</summary>
    public required string Workflow { get; init; }
    /// <summary>The workflow version.</summary>
    public required int Version { get; init; }
    /// <summary>The tenant.</summary>
    public required string Tenant { get; init; }
    /// <summary>Who submits it.</summary>
    public required string Submitter { get; init; }
    /// <summary>The definition it is pinned to; stored if the store does not have it yet.</summary>
    public required DefinitionRecord Definition { get; init; }
    /// <summary>The parent job, for a sub-workflow.</summary>
    public JobId? ParentJobId { get; init; }
    /// <summary>The root of the job tree.</summary>
    public JobId? RootJobId { get; init; }
    /// <summary>The trace id.</summary>
    public required string TraceId { get; init; }
    /// <summary>Higher runs first.</summary>
    public int Priority { get; init; }
    /// <summary>Submission time.</summary>
    public required DateTimeOffset CreatedAt { get; init; }
    /// <summary>The first events, sealed from the genesis hash (JobSubmitted first, at seq 1).</summary>
    public required IReadOnlyList<EventEnvelope> Events { get; init; }
    /// <summary>The first work items.</summary>
    public required IReadOnlyList<NewWorkItem> WorkItems { get; init; }
    /// <summary>The status after these events.</summary>
    public JobStatus Status { get; init; } = JobStatus.Queued;
    /// <summary>The tenant's quota, checked in the same transaction as the insert.</summary>
    public TenantQuota? Quota { get; init; }
    /// <summary>
    /// Whether the job is a shadow job (or a job under one): no work of the tenant's production, so it never counts toward
    /// the tenant's quotas (<see cref="TenantQuota.ConcurrentJobs"/>, <see cref="TenantQuota.JobsPerMinute"/>), whatever its
    /// status. Default: false.
    /// </summary>
    public bool Shadow { get; init; }
    /// <summary>Initial kill switches of the job's policies, seeded in the same transaction (each seed once per store).</summary>
    public IReadOnlyList<KillSwitchSeed> KillSwitchSeeds { get; init; } = [];
}

/// <summary>The initial kill switches of a policy, set once (the first submission that carries them), in that submission's transaction.</summary>
/// <param name="Seed">The policy as <c>name@version</c>: later submissions with the same seed set nothing (so <c>ordo kill clear</c> is not undone).</param>
/// <param name="Switches">The switches.</param>
public sealed record KillSwitchSeed(string Seed, IReadOnlyList<KillSwitches.KillSwitch> Switches);

/// <summary>Limits on a tenant's submissions.</summary>
/// <param name="ConcurrentJobs">Jobs not yet ended (queued, running, waiting for approval) at once.</param>
/// <param name="JobsPerMinute">Submissions in the last 60 seconds.</param>
public sealed record TenantQuota(int? ConcurrentJobs, int? JobsPerMinute);

/// <summary>
/// A submission was refused because the tenant is over its quota; nothing was created. The CLI exits 8 with the message
/// and the wait; an HTTP host answers 429 with <c>Retry-After</c> set to <see cref="RetryAfter"/> rounded up to seconds.
/// </summary>
/// <param name="tenant">The tenant.</param>
/// <param name="quota"><c>concurrent_jobs</c> or <c>jobs_per_minute</c>.</param>
/// <param name="limit">The limit.</param>
/// <param name="current">Jobs counted against the limit when the submission was refused.</param>
/// <param name="retryAfter">How long to wait before trying again; <see cref="DefaultRetryAfter"/> when null.</param>
public sealed class QuotaExceededException(string tenant, string quota, int limit, int current, TimeSpan? retryAfter = null)
    : OrdoRefusedException($"tenant '{tenant}' is over its quota: {quota} is {limit} and {current} are in use; try again in {Seconds(retryAfter ?? DefaultRetryAfter)} s")
{
    /// <summary>
    /// The wait suggested when no instant is known to free the quota: a job of the tenant must end for
    /// <c>concurrent_jobs</c> to allow another, and when it will is not known. Default: 5 seconds.
    /// </summary>
    public static readonly TimeSpan DefaultRetryAfter = TimeSpan.FromSeconds(5);

    /// <summary>The tenant.</summary>
    public string Tenant { get; } = tenant;
    /// <summary><c>concurrent_jobs</c> or <c>jobs_per_minute</c>.</summary>
    public string Quota { get; } = quota;
    /// <summary>The limit.</summary>
    public int Limit { get; } = limit;

    /// <summary>Jobs in use against the limit when the submission was refused.</summary>
    public int Current { get; } = current;

    /// <summary>
    /// How long to wait before a submission can pass: for <c>jobs_per_minute</c>, until enough of the minute's
    /// submissions have left the window (exact, for the time the store was given); for <c>concurrent_jobs</c>,
    /// <see cref="DefaultRetryAfter"/>. Never negative.
    /// </summary>
    public TimeSpan RetryAfter { get; } = retryAfter is { } r && r > TimeSpan.Zero ? r : retryAfter is null ? DefaultRetryAfter : TimeSpan.Zero;

    /// <summary>The window of <c>jobs_per_minute</c>.</summary>
    public static readonly TimeSpan RateWindow = TimeSpan.FromMinutes(1);

    /// <summary>
    /// The refusal of a submission at <paramref name="now"/> over <c>jobs_per_minute</c>, given the creation times of
    /// the tenant's submissions in the window (ascending): it may pass once all but <paramref name="limit"/> - 1 of them
    /// have left the window.
    /// </summary>
    /// <param name="tenant">The tenant.</param>
    /// <param name="limit">The quota.</param>
    /// <param name="inWindow">Creation times of the submissions after <paramref name="now"/> minus <see cref="RateWindow"/>, ascending.</param>
    /// <param name="now">The time of the refused submission.</param>
    public static QuotaExceededException OverRate(string tenant, int limit, IReadOnlyList<DateTimeOffset> inWindow, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(inWindow);
        // A submission at t counts those created after t - window; the one at index count - limit leaves it at its time + window.
        var leaving = inWindow[Math.Clamp(inWindow.Count - limit, 0, inWindow.Count - 1)];
        return new QuotaExceededException(tenant, "jobs_per_minute", limit, inWindow.Count, leaving + RateWindow - now);
    }

    private static long Seconds(TimeSpan wait) => Math.Max(0, (long)Math.Ceiling(wait.TotalSeconds));
}

/// <summary>
/// The result of a step (or of an outside action such as a cancel), committed in ONE transaction:
/// its events are appended at <see cref="ExpectedSeq"/>, its successors enqueued and its work item acknowledged.
/// </summary>
public sealed record JobCommit
{
    /// <summary>The job.</summary>
    public required JobId JobId { get; init; }
    /// <summary>The sequence number of the last event the caller's state includes; the commit fails if the log has moved on.</summary>
    public required long ExpectedSeq { get; init; }
    /// <summary>The hash of that event.</summary>
    public required byte[] ExpectedHeadHash { get; init; }
    /// <summary>Events to append, sealed by <see cref="EventChain.Seal"/> on (<see cref="ExpectedSeq"/>, <see cref="ExpectedHeadHash"/>).</summary>
    public required IReadOnlyList<EventEnvelope> Events { get; init; }
    /// <summary>The work item to acknowledge (delete), if the commit completes one; the lease must still be held.</summary>
    public WorkItemLease? Ack { get; init; }
    /// <summary>Check that <see cref="Ack"/>'s lease is held, but keep the item (events recorded in the middle of a step).</summary>
    public bool KeepWorkItem { get; init; }
    /// <summary>Work items to enqueue for this job.</summary>
    public IReadOnlyList<NewWorkItem> Enqueue { get; init; } = [];
    /// <summary>Remove every other work item of the job (it ended or was cancelled).</summary>
    public bool DropPendingWork { get; init; }
    /// <summary>Remove the work items of these scopes and everything nested in them (cancelled branches and items).</summary>
    public IReadOnlyList<string> DropScopes { get; init; } = [];
    /// <summary>Jobs to create in the same transaction (sub-workflows of this job).</summary>
    public IReadOnlyList<NewJob> StartJobs { get; init; } = [];
    /// <summary>Work items for other jobs (a finished sub-workflow wakes its parent).</summary>
    public IReadOnlyList<OtherJobWork> NotifyJobs { get; init; } = [];
    /// <summary>The job's status after these events.</summary>
    public required JobStatus Status { get; init; }
    /// <summary>The reason stored with a failed or cancelled status.</summary>
    public string? Reason { get; init; }
    /// <summary>A snapshot of the state after these events, if one is due.</summary>
    public StateSnapshot? Snapshot { get; init; }
    /// <summary>
    /// Sent before the commit it continues (the one that leads the log to <see cref="ExpectedSeq"/>) is known to be
    /// written (<see cref="IJobJournal.CanCommitAhead"/>): a store that can waits for that commit and writes this one
    /// after it, or refuses it as it refuses any commit whose expected head or lease is not there. Other stores treat it
    /// as any commit.
    /// </summary>
    public bool Ahead { get; init; }
}

/// <summary>A work item for another job than the one committing.</summary>
/// <param name="JobId">The job the item belongs to.</param>
/// <param name="Item">The item.</param>
public sealed record OtherJobWork(JobId JobId, NewWorkItem Item);

/// <summary>How a commit ended.</summary>
public enum CommitOutcome
{
    /// <summary>Everything was written.</summary>
    Committed,
    /// <summary>The log moved past the expected sequence number; nothing was written. Reload and decide again.</summary>
    Conflict,
    /// <summary>The acknowledged work item is gone or leased to someone else (a duplicate delivery); nothing was written.</summary>
    LeaseLost,
    /// <summary>The job does not exist.</summary>
    NotFound,
}

/// <summary>The result of <see cref="IJobJournal.CommitAsync"/>.</summary>
/// <param name="Outcome">How it ended.</param>
/// <param name="LeasedItems">Enqueued items that were leased to the committing worker.</param>
public sealed record CommitResult(CommitOutcome Outcome, IReadOnlyList<WorkItem> LeasedItems)
{
    /// <summary>A result with nothing written.</summary>
    public static CommitResult Failed(CommitOutcome outcome) => new(outcome, []);
}

/// <summary>
/// The store cannot take writes now: its disk is full, it cannot be written (I/O error, read-only, damaged). Nothing of
/// the refused write was kept. A run until idle stops with it; a long-running worker waits and tries again.
/// </summary>
public sealed class StoreUnavailableException(string message, Exception? inner = null) : OrdoException(message, inner);

/// <summary>A leased work item, as <c>ordo doctor</c> lists it.</summary>
/// <param name="ItemId">The item.</param>
/// <param name="JobId">Its job.</param>
/// <param name="WorkKey">Its step visit and scope.</param>
/// <param name="Owner">The worker holding the lease.</param>
/// <param name="ExpiresAt">When the lease runs out unless renewed.</param>
public sealed record LeaseRecord(long ItemId, JobId JobId, string WorkKey, string Owner, DateTimeOffset ExpiresAt);

/// <summary>What a store can prove about a worker that holds leases.</summary>
public enum WorkerLiveness
{
    /// <summary>It cannot tell (another host, a worker that left no trace it can check): its leases are waited out.</summary>
    Unknown,
    /// <summary>The worker runs.</summary>
    Alive,
    /// <summary>The worker's process is gone: its leases may be taken over at once.</summary>
    Dead,
}

/// <summary>Filters for listing jobs.</summary>
public sealed record JobQuery
{
    /// <summary>Only this status.</summary>
    public JobStatus? Status { get; init; }
    /// <summary>Only this tenant.</summary>
    public string? Tenant { get; init; }
    /// <summary>Only children of this job.</summary>
    public JobId? ParentJobId { get; init; }
    /// <summary>Only jobs of the workflow with this name.</summary>
    public string? Workflow { get; init; }
    /// <summary>Only jobs of this version of <see cref="Workflow"/>.</summary>
    public int? WorkflowVersion { get; init; }
    /// <summary>Only jobs listed after this one (older, in the newest-first order): the cursor of the next page.</summary>
    public JobId? After { get; init; }
    /// <summary>At most this many, newest first.</summary>
    public int Limit { get; init; } = 100;
}
