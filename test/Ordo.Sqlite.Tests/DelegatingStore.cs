using Ordo.Audit;
using Ordo.Events;
using Ordo.Queue;
using Ordo.State;
using Ordo.Storage;

namespace Ordo.Sqlite.Tests;

/// <summary>A store that passes every call to another one; tests override the calls they put a fault or a pause in.</summary>
internal abstract class DelegatingStore(IOrdoStore inner) : IOrdoStore
{
    protected IOrdoStore Inner => inner;

    public int SchemaVersion => inner.SchemaVersion;
    public virtual ValueTask<IReadOnlyList<WorkItem>> ClaimAsync(ClaimRequest request, CancellationToken cancellationToken = default) => inner.ClaimAsync(request, cancellationToken);
    public virtual ValueTask<QueueSummary> GetQueueSummaryAsync(JobId? rootJobId, DateTimeOffset now, CancellationToken cancellationToken = default) => inner.GetQueueSummaryAsync(rootJobId, now, cancellationToken);
    public virtual ValueTask<JobRecord> SubmitAsync(NewJob job, CancellationToken cancellationToken = default) => inner.SubmitAsync(job, cancellationToken);
    public virtual ValueTask<CommitResult> CommitAsync(JobCommit commit, CancellationToken cancellationToken = default) => inner.CommitAsync(commit, cancellationToken);
    public ValueTask<JobRecord?> GetJobAsync(JobId jobId, CancellationToken cancellationToken = default) => inner.GetJobAsync(jobId, cancellationToken);
    public ValueTask<IReadOnlyList<JobRecord>> ListJobsAsync(JobQuery query, CancellationToken cancellationToken = default) => inner.ListJobsAsync(query, cancellationToken);
    public IAsyncEnumerable<EventEnvelope> ReadEventsAsync(JobId jobId, long afterSeq = 0, CancellationToken cancellationToken = default) => inner.ReadEventsAsync(jobId, afterSeq, cancellationToken);
    public ValueTask<StateSnapshot?> GetSnapshotAsync(JobId jobId, CancellationToken cancellationToken = default) => inner.GetSnapshotAsync(jobId, cancellationToken);
    public ValueTask<DefinitionRecord?> GetDefinitionAsync(string hash, CancellationToken cancellationToken = default) => inner.GetDefinitionAsync(hash, cancellationToken);
    public virtual ValueTask<IReadOnlyList<long>> RenewLeasesAsync(IReadOnlyList<WorkItemLease> leases, DateTimeOffset expiresAt, CancellationToken cancellationToken = default) => inner.RenewLeasesAsync(leases, expiresAt, cancellationToken);
    public virtual ValueTask<bool> ReleaseAsync(WorkItemLease lease, DateTimeOffset availableAt, CancellationToken cancellationToken = default) => inner.ReleaseAsync(lease, availableAt, cancellationToken);
    public ValueTask<IReadOnlyList<LeaseRecord>> ListLeasesAsync(CancellationToken cancellationToken = default) => inner.ListLeasesAsync(cancellationToken);
    public WorkerLiveness GetWorkerLiveness(string owner) => inner.GetWorkerLiveness(owner);
    public IDisposable? WatchForWork(string worker, Action wake) => inner.WatchForWork(worker, wake);
    public ValueTask InitializeAsync(CancellationToken cancellationToken = default) => inner.InitializeAsync(cancellationToken);
    public ValueTask SetKillSwitchAsync(KillSwitches.KillSwitch killSwitch, CancellationToken cancellationToken = default) => inner.SetKillSwitchAsync(killSwitch, cancellationToken);
    public ValueTask<bool> ClearKillSwitchAsync(string target, string? tenant, CancellationToken cancellationToken = default) => inner.ClearKillSwitchAsync(target, tenant, cancellationToken);
    public ValueTask<IReadOnlyList<KillSwitches.KillSwitch>> ListKillSwitchesAsync(CancellationToken cancellationToken = default) => inner.ListKillSwitchesAsync(cancellationToken);
    public ValueTask SeedKillSwitchesAsync(string seed, IReadOnlyList<KillSwitches.KillSwitch> switches, CancellationToken cancellationToken = default) => inner.SeedKillSwitchesAsync(seed, switches, cancellationToken);
    public ValueTask<IReadOnlyList<JobRecord>> ListJobsWithoutWorkAsync(CancellationToken cancellationToken = default) => inner.ListJobsWithoutWorkAsync(cancellationToken);
    public ValueTask<long> GetAuditLogSizeAsync(CancellationToken cancellationToken = default) => inner.GetAuditLogSizeAsync(cancellationToken);
    public ValueTask<IReadOnlyList<byte[]?>> ReadAuditNodesAsync(IReadOnlyList<MerkleNodeId> ids, CancellationToken cancellationToken = default) => inner.ReadAuditNodesAsync(ids, cancellationToken);

    public IAsyncEnumerable<MerkleNode> ReadStoredAuditNodesAsync(long size, CancellationToken cancellationToken = default) => inner.ReadStoredAuditNodesAsync(size, cancellationToken);
    public IAsyncEnumerable<StoredAuditLeaf> ReadAuditLeavesAsync(long from, long to, CancellationToken cancellationToken = default) => inner.ReadAuditLeavesAsync(from, to, cancellationToken);
    public IAsyncEnumerable<StoredAuditLeaf> ReadAuditLeavesOfAsync(string subject, CancellationToken cancellationToken = default) => inner.ReadAuditLeavesOfAsync(subject, cancellationToken);
    public ValueTask AddAuditCheckpointAsync(AuditCheckpoint checkpoint, CancellationToken cancellationToken = default) => inner.AddAuditCheckpointAsync(checkpoint, cancellationToken);
    public ValueTask<AuditCheckpoint?> GetLatestAuditCheckpointAsync(CancellationToken cancellationToken = default) => inner.GetLatestAuditCheckpointAsync(cancellationToken);
    public ValueTask<Stats.StatsData> ReadStatsAsync(Stats.StatsQuery query, CancellationToken cancellationToken = default) => inner.ReadStatsAsync(query, cancellationToken);
    public ValueTask<bool> AddReleaseRecordAsync(ReleaseRecord record, CancellationToken cancellationToken = default) => inner.AddReleaseRecordAsync(record, cancellationToken);
    public ValueTask<IReadOnlyList<ReleaseRecord>> ListReleaseRecordsAsync(string? workflow = null, CancellationToken cancellationToken = default) => inner.ListReleaseRecordsAsync(workflow, cancellationToken);
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
