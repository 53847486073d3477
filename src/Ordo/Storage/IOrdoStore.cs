using Ordo.Events;
using Ordo.Queue;
using Ordo.State;

namespace Ordo.Storage;

/// <summary>
/// The durable store of Ordo: the job journal, the work queue and the administration of the store, in one place so that
/// a step's events, its successors and its acknowledgement are committed together. Each part is an interface of its own
/// (<see cref="IJobJournal"/>, <see cref="IQueueStore"/>, <see cref="IStoreAdministration"/>, <see cref="Audit.IAuditLogStore"/>), so that code depends only on the part it uses.
/// </summary>
/// <remarks>
/// Implementations are thread-safe. Every write is conditional: appends take an expected sequence number
/// and acknowledgements an expected lease token, so a concurrent or duplicate write fails instead of forking the log.
/// </remarks>
public interface IOrdoStore : IJobJournal, IQueueStore, IStoreAdministration, Audit.IAuditLogStore, IStatsStore, IReleaseStore, IAsyncDisposable;

/// <summary>Jobs and their logs: submissions, commits, and reading back what was written.</summary>
public interface IJobJournal
{
    /// <summary>Creates a job with its first events and work items, storing its definition if new.</summary>
    /// <exception cref="InvalidOperationException">A job with this id exists.</exception>
    /// <exception cref="QuotaExceededException">The tenant is over its quota; nothing was created.</exception>
    ValueTask<JobRecord> SubmitAsync(NewJob job, CancellationToken cancellationToken = default);

    /// <summary>Appends events, enqueues successors and acknowledges a work item in one transaction.</summary>
    ValueTask<CommitResult> CommitAsync(JobCommit commit, CancellationToken cancellationToken = default);

    /// <summary>
    /// Commits several commits in order, each on its own terms (one refused commit does not undo the others), and
    /// returns one task per commit. A store that can writes them in one transaction; a commit that continues another's
    /// log (its expected sequence number is the other's last event) is refused with
    /// <see cref="CommitOutcome.Conflict"/> when that one was refused. By default they are committed one after the other.
    /// </summary>
    IReadOnlyList<Task<CommitResult>> CommitInOrder(IReadOnlyList<JobCommit> commits, CancellationToken cancellationToken = default)
        => OrderedCommits.OneByOne(this, commits, cancellationToken);

    /// <summary>
    /// Whether a commit may be sent now before the commit it continues is written (<see cref="JobCommit.Ahead"/>). A
    /// store that says so writes such a commit right after the one it continues, when that one leaves the job where this
    /// one expects it, and refuses it otherwise; and it continues an acknowledged item's row for the one successor leased
    /// to the same owner, under the same item id with the next token, so that the caller knows that successor's lease
    /// before the commit is written. Asked before each such commit: a store may say no while as many commits as it keeps
    /// ahead are waiting. Default: false.
    /// </summary>
    bool CanCommitAhead => false;

    /// <summary>Reads a job.</summary>
    ValueTask<JobRecord?> GetJobAsync(JobId jobId, CancellationToken cancellationToken = default);

    /// <summary>Lists jobs, newest first.</summary>
    ValueTask<IReadOnlyList<JobRecord>> ListJobsAsync(JobQuery query, CancellationToken cancellationToken = default);

    /// <summary>
    /// Reads a job of one tenant: null when it does not exist or belongs to another tenant. A store that can filters by
    /// tenant in its query; by default the job is read and then compared.
    /// </summary>
    async ValueTask<JobRecord?> GetJobAsync(JobId jobId, string tenant, CancellationToken cancellationToken = default)
        => await GetJobAsync(jobId, cancellationToken).ConfigureAwait(false) is { } job && string.Equals(job.Tenant, tenant, StringComparison.Ordinal) ? job : null;

    /// <summary>
    /// Reads the events of a job of one tenant with a sequence number above <paramref name="afterSeq"/>, in order; none
    /// when the job does not exist or belongs to another tenant.
    /// </summary>
    async IAsyncEnumerable<EventEnvelope> ReadEventsAsync(JobId jobId, string tenant, long afterSeq = 0, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (await GetJobAsync(jobId, tenant, cancellationToken).ConfigureAwait(false) is null) yield break;
        await foreach (var e in ReadEventsAsync(jobId, afterSeq, cancellationToken).ConfigureAwait(false))
        {
            yield return e;
        }
    }

    /// <summary>Reads a job's events with a sequence number above <paramref name="afterSeq"/>, in order.</summary>
    IAsyncEnumerable<EventEnvelope> ReadEventsAsync(JobId jobId, long afterSeq = 0, CancellationToken cancellationToken = default);

    /// <summary>Reads the latest snapshot of a job's state.</summary>
    ValueTask<StateSnapshot?> GetSnapshotAsync(JobId jobId, CancellationToken cancellationToken = default);

    /// <summary>Reads a stored definition.</summary>
    ValueTask<DefinitionRecord?> GetDefinitionAsync(string hash, CancellationToken cancellationToken = default);
}

/// <summary>The durable work queue: claiming with leases, renewing and releasing them, and what is on it.</summary>
public interface IQueueStore
{
    /// <summary>
    /// Leases available work items and appends a StepStarted event for each. Tenants are served in turn
    /// (<see cref="TenantRotation"/>): starting with the tenant after the one served last, each tenant with ready work
    /// gives its next item, then each its second, and so on; inside a tenant, highest priority first, then earliest
    /// available. A claim for one job tree (<see cref="ClaimRequest.RootJobId"/>) keeps that tree's own order. An item
    /// whose previous lease was not released (it expired, or its owner is among <see cref="ClaimRequest.DeadOwners"/>)
    /// counts a lost delivery and names that owner.
    /// </summary>
    ValueTask<IReadOnlyList<WorkItem>> ClaimAsync(ClaimRequest request, CancellationToken cancellationToken = default);

    /// <summary>Extends leases still held; returns the ids of the items whose lease was renewed.</summary>
    ValueTask<IReadOnlyList<long>> RenewLeasesAsync(IReadOnlyList<WorkItemLease> leases, DateTimeOffset expiresAt, CancellationToken cancellationToken = default);

    /// <summary>Gives a leased item back to the queue, available at <paramref name="availableAt"/>, without counting a failure.</summary>
    ValueTask<bool> ReleaseAsync(WorkItemLease lease, DateTimeOffset availableAt, CancellationToken cancellationToken = default);

    /// <summary>
    /// Takes every work item of a job from whoever holds it, whatever the job's log says: each item's fencing token moves
    /// on and its lease ends, so that the holders' commits, appends and renewals are refused from now on, and no worker
    /// claims it before <paramref name="until"/>. A cancel that keeps losing to the job's own commits stops the job this
    /// way, then commits on a log that no longer moves (its commit removes the items). Returns how many items there were.
    /// By default nothing is fenced (0).
    /// </summary>
    ValueTask<int> FenceJobAsync(JobId jobId, DateTimeOffset until, CancellationToken cancellationToken = default) => ValueTask.FromResult(0);

    /// <summary>Summarizes the queue, for one job tree or for everything. Timers (<see cref="SystemItems.IsTimer"/>) are counted only once they fire.</summary>
    ValueTask<QueueSummary> GetQueueSummaryAsync(JobId? rootJobId, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>The leased items, for diagnostics (<c>ordo doctor</c>).</summary>
    ValueTask<IReadOnlyList<LeaseRecord>> ListLeasesAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Whether the worker named <paramref name="owner"/> still runs, as far as this store can prove it. Only
    /// <see cref="WorkerLiveness.Dead"/> lets another worker take its leases over before they expire; a store that
    /// cannot tell answers <see cref="WorkerLiveness.Unknown"/> (the default), and the leases are waited out.
    /// </summary>
    WorkerLiveness GetWorkerLiveness(string owner) => WorkerLiveness.Unknown;

    /// <summary>
    /// Calls <paramref name="wake"/> when another process may have added work (a submission, a successor, a released
    /// item), so that <paramref name="worker"/> can wait for work without polling; dispose the result to stop. Null when
    /// the store cannot (the default): the worker then looks every <see cref="Engine.OrdoRuntimeOptions.PollInterval"/>.
    /// </summary>
    IDisposable? WatchForWork(string worker, Action wake) => null;
}

/// <summary>The store itself: its schema, its kill switches, and checks of its health.</summary>
public interface IStoreAdministration
{
    /// <summary>Creates or upgrades the schema. Idempotent.</summary>
    ValueTask InitializeAsync(CancellationToken cancellationToken = default);

    /// <summary>The schema version this store is at (after <see cref="InitializeAsync"/>).</summary>
    int SchemaVersion { get; }

    /// <summary>Sets (or replaces) a kill switch: one per target and <see cref="KillSwitches.KillSwitch.Tenant"/> (null: every tenant).</summary>
    ValueTask SetKillSwitchAsync(KillSwitches.KillSwitch killSwitch, CancellationToken cancellationToken = default);

    /// <summary>Clears the kill switch of every tenant on <paramref name="target"/>; returns false when it was not set.</summary>
    ValueTask<bool> ClearKillSwitchAsync(string target, CancellationToken cancellationToken = default)
        => ClearKillSwitchAsync(target, tenant: null, cancellationToken);

    /// <summary>Clears the kill switch on <paramref name="target"/> of <paramref name="tenant"/> only (null: the one of every tenant); returns false when it was not set.</summary>
    ValueTask<bool> ClearKillSwitchAsync(string target, string? tenant, CancellationToken cancellationToken = default);

    /// <summary>Lists the kill switches that are set, every tenant's and those of all tenants.</summary>
    ValueTask<IReadOnlyList<KillSwitches.KillSwitch>> ListKillSwitchesAsync(CancellationToken cancellationToken = default);

    /// <summary>Sets the initial kill switches of a policy once: the first call for <paramref name="seed"/> sets them, later calls do nothing (so <c>ordo kill clear</c> is not undone).</summary>
    ValueTask SeedKillSwitchesAsync(string seed, IReadOnlyList<KillSwitches.KillSwitch> switches, CancellationToken cancellationToken = default);

    /// <summary>Jobs that have not ended and have no work item on the queue (no step to run, no timer, no notice): candidates for <c>ordo doctor</c>.</summary>
    ValueTask<IReadOnlyList<JobRecord>> ListJobsWithoutWorkAsync(CancellationToken cancellationToken = default);
}
