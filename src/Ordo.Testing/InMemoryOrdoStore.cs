using System.Runtime.CompilerServices;
using Ordo.Audit;
using Ordo.Events;
using Ordo.Queue;
using Ordo.State;
using Ordo.Storage;

namespace Ordo.Testing;

/// <summary>
/// A store that keeps everything in memory: for tests, benchmarks and short-lived embedded runs.
/// It honours the same contract as the durable stores (conditional appends, leases, one-transaction commits)
/// but loses everything when the process ends.
/// </summary>
/// <remarks>Thread-safe: every operation holds one lock.</remarks>
public sealed class InMemoryOrdoStore : IOrdoStore, IApiKeyStore
{
    private readonly Lock _gate = new();
    private readonly Dictionary<JobId, JobEntry> _jobs = [];
    private readonly List<JobId> _jobOrder = [];
    private readonly Dictionary<string, DefinitionRecord> _definitions = new(StringComparer.Ordinal);
    private readonly Dictionary<long, ItemEntry> _items = [];
    private readonly HashSet<(JobId, string)> _itemKeys = [];
    private readonly Dictionary<(string Tenant, string Target), KillSwitches.KillSwitch> _switches = [];
    private readonly HashSet<string> _seeds = new(StringComparer.Ordinal);
    private readonly List<ApiKeyRecord> _apiKeys = [];
    private readonly List<ReleaseRecord> _releases = [];
    private long _nextItemId;
    private string? _claimCursor;

    // The audit log: every perfect subtree by id (level 0 are the leaves), the leaves as recorded, and the frontier.
    private readonly Dictionary<MerkleNodeId, byte[]> _auditNodes = [];
    private readonly List<StoredAuditLeaf> _auditLeaves = [];
    private readonly MerkleFrontier _auditFrontier = new();
    private readonly List<AuditCheckpoint> _checkpoints = [];

    /// <inheritdoc />
    public ValueTask InitializeAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    /// <inheritdoc />
    public int SchemaVersion => 1;

    /// <inheritdoc />
    public ValueTask<JobRecord> SubmitAsync(NewJob job, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(job);
        lock (_gate)
        {
            return ValueTask.FromResult(SubmitCore(job));
        }
    }

    private JobRecord SubmitCore(NewJob job)
    {
        if (_jobs.ContainsKey(job.JobId))
        {
            throw new InvalidOperationException($"Job {job.JobId} already exists.");
        }

        if (job.Quota is { } quota)
        {
            CheckQuota(job, quota, _jobs.Values.Where(j => !j.Shadow).Select(j => j.Record));
        }

        CommitChecks.EnsureContinues(job.JobId, 0, EventChain.GenesisHash, job.Events);
        foreach (var seed in job.KillSwitchSeeds)
        {
            Seed(seed.Seed, seed.Switches);
        }

        return AddJob(job);
    }

    /// <summary>Stores a job that passed every check.</summary>
    private JobRecord AddJob(NewJob job)
    {
        if (_definitions.TryAdd(job.Definition.Hash, job.Definition))
        {
            AppendAudit(AuditLeaf.ForDefinition(job.Definition.Hash, job.Definition.Content));
        }

        var events = job.Events;
        if (events.Count > 0) AppendAudit(AuditLeaf.ForEvents(job.JobId, events));
        var record = NewRecord(job);
        var entry = new JobEntry(record) { Shadow = job.Shadow };
        entry.Events.AddRange(events);
        entry.Summary.Apply(Stats.JobStatsDelta.Of(events), record.Status, events.Count > 0 ? events[^1].Timestamp : record.CreatedAt);
        _jobs.Add(job.JobId, entry);
        _jobOrder.Add(job.JobId);
        List<WorkItem>? leased = null;
        foreach (var item in job.WorkItems)
        {
            var added = AddItem(entry, item);
            if (item.LeaseOwner is not null)
            {
                (leased ??= []).Add(added.ToWorkItem(record));
            }
        }

        return leased is null ? record : record with { LeasedItems = leased };
    }

    private static JobRecord NewRecord(NewJob job) => new()
    {
        JobId = job.JobId,
        Workflow = job.Workflow,
        Version = job.Version,
        Tenant = job.Tenant,
        Status = job.Status,
        Submitter = job.Submitter,
        ParentJobId = job.ParentJobId,
        RootJobId = job.RootJobId ?? job.JobId,
        DefinitionHash = job.Definition.Hash,
        TraceId = job.TraceId,
        Priority = job.Priority,
        CreatedAt = job.CreatedAt,
        UpdatedAt = job.CreatedAt,
        LastSeq = job.Events.Count,
        HeadHash = job.Events.Count == 0 ? EventChain.GenesisHash.ToArray() : job.Events[^1].Hash,
        Shadow = job.Shadow,
    };

    /// <inheritdoc />
    public ValueTask<CommitResult> CommitAsync(JobCommit commit, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(commit);
        CommitChecks.EnsureContinues(commit.JobId, commit.ExpectedSeq, commit.ExpectedHeadHash, commit.Events);
        foreach (var child in commit.StartJobs)
        {
            CommitChecks.EnsureContinues(child.JobId, 0, EventChain.GenesisHash, child.Events);
        }

        lock (_gate)
        {
            // Every check comes before the first change, so a refused commit leaves the store as it was.
            if (!_jobs.TryGetValue(commit.JobId, out var entry))
            {
                return ValueTask.FromResult(CommitResult.Failed(CommitOutcome.NotFound));
            }

            if (commit.Ack is { } ack && (!_items.TryGetValue(ack.ItemId, out var acked) || acked.LeaseOwner != ack.Owner || acked.Token != ack.Token || acked.JobId != commit.JobId))
            {
                return ValueTask.FromResult(CommitResult.Failed(CommitOutcome.LeaseLost));
            }

            if (entry.Record.LastSeq != commit.ExpectedSeq || !entry.Record.HeadHash.AsSpan().SequenceEqual(commit.ExpectedHeadHash))
            {
                return ValueTask.FromResult(CommitResult.Failed(CommitOutcome.Conflict));
            }

            if (!CanStart(commit))
            {
                return ValueTask.FromResult(CommitResult.Failed(CommitOutcome.Conflict));
            }

            CheckChildren(commit);

            var events = commit.Events;
            entry.Events.AddRange(events);
            if (events.Count > 0) AppendAudit(AuditLeaf.ForEvents(commit.JobId, events));
            if (commit.Ack is { } a && !commit.KeepWorkItem)
            {
                RemoveItem(a.ItemId);
            }

            if (commit.DropPendingWork)
            {
                foreach (var id in _items.Where(kv => kv.Value.JobId == commit.JobId).Select(kv => kv.Key).ToList())
                {
                    RemoveItem(id);
                }
            }

            foreach (var scope in commit.DropScopes)
            {
                var prefix = scope + "/";
                foreach (var id in _items.Where(kv => kv.Value.JobId == commit.JobId && kv.Value.WorkKey.StartsWith(prefix, StringComparison.Ordinal)).Select(kv => kv.Key).ToList())
                {
                    RemoveItem(id);
                }
            }

            foreach (var child in commit.StartJobs)
            {
                AddJob(child);
            }

            foreach (var other in commit.NotifyJobs)
            {
                if (_jobs.TryGetValue(other.JobId, out var target) && !_itemKeys.Contains((other.JobId, other.Item.Step.WorkKey)))
                {
                    AddItem(target, other.Item);
                }
            }

            var leased = new List<WorkItem>();
            foreach (var item in commit.Enqueue)
            {
                var added = AddItem(entry, item);
                if (item.LeaseOwner is not null)
                {
                    leased.Add(added.ToWorkItem(entry.Record));
                }
            }

            var last = events.Count > 0 ? events[^1] : null;
            entry.Summary.Apply(Stats.JobStatsDelta.Of(events), commit.Status, last?.Timestamp ?? entry.Record.UpdatedAt);
            entry.Record = entry.Record with
            {
                Status = commit.Status,
                Reason = commit.Reason ?? entry.Record.Reason,
                LastSeq = last?.Seq ?? entry.Record.LastSeq,
                HeadHash = last?.Hash ?? entry.Record.HeadHash,
                UpdatedAt = last?.Timestamp ?? entry.Record.UpdatedAt,
            };
            if (commit.Snapshot is not null)
            {
                entry.Snapshot = commit.Snapshot;
            }

            return ValueTask.FromResult(new CommitResult(CommitOutcome.Committed, leased));
        }
    }

    /// <summary>Whether every job the commit starts is new (and started once).</summary>
    private bool CanStart(JobCommit commit)
    {
        var ids = new HashSet<JobId>();
        foreach (var child in commit.StartJobs)
        {
            if (!ids.Add(child.JobId) || _jobs.ContainsKey(child.JobId))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Checks the jobs a commit starts as the store will see them when each is inserted: after the committing job's
    /// new status and the jobs started before it in the same commit.
    /// </summary>
    /// <exception cref="InvalidOperationException">A job's root does not exist.</exception>
    /// <exception cref="QuotaExceededException">A job is over its tenant's quota.</exception>
    private void CheckChildren(JobCommit commit)
    {
        if (commit.StartJobs.Count == 0)
        {
            return;
        }

        // Shadow jobs are left out: they never count toward a quota.
        var records = _jobs.Values.Where(j => !j.Shadow).Select(j => j.Record.JobId == commit.JobId ? j.Record with { Status = commit.Status } : j.Record).ToList();
        var started = new HashSet<JobId>();
        foreach (var child in commit.StartJobs)
        {
            var root = child.RootJobId ?? child.JobId;
            if (root != child.JobId && !_jobs.ContainsKey(root) && !started.Contains(root))
            {
                throw new InvalidOperationException($"Root job {root} does not exist.");
            }

            if (child.Quota is { } quota)
            {
                CheckQuota(child, quota, records);
            }

            if (!child.Shadow) records.Add(NewRecord(child));
            started.Add(child.JobId);
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<WorkItem>> ClaimAsync(ClaimRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        lock (_gate)
        {
            var dead = request.DeadOwners;
            JobId? tree = null;
            if (request.RootJobId is { } root)
            {
                if (!_jobs.TryGetValue(root, out var rootEntry)) return ValueTask.FromResult<IReadOnlyList<WorkItem>>([]);
                tree = rootEntry.Record.RootJobId;
            }

            var ready = _items.Values
                .Where(i => i.VisibleAt <= request.Now || (i.LeaseOwner is not null && dead is not null && dead.Contains(i.LeaseOwner)))
                .Where(i => tree is null || _jobs[i.JobId].Record.RootJobId == tree)
                .OrderByDescending(i => i.Priority).ThenBy(i => i.VisibleAt).ThenBy(i => i.Id);
            var candidates = tree is null ? ClaimFairly(ready, request.MaxItems) : ready.Take(request.MaxItems).ToList();
            var result = new List<WorkItem>(candidates.Count);
            foreach (var item in candidates)
            {
                var entry = _jobs[item.JobId];
                // A lease that was not released was lost: its owner died or stopped renewing it.
                var lostFrom = item.LeaseOwner;
                if (lostFrom is not null)
                {
                    item.Lost++;
                    item.LostOwners = [.. item.LostOwners.TakeLast(StoreEvents.LostOwnersKept - 1), lostFrom];
                }

                item.LeaseOwner = request.Owner;
                item.Token++;
                item.Deliveries++;
                item.VisibleAt = request.Now + request.LeaseDuration;
                if (!SystemItems.IsSystem(item.Step.StepId))
                {
                    var started = EventChain.Seal(item.JobId, entry.Record.LastSeq, entry.Record.HeadHash, [StoreEvents.StepStarted(item.Step, request.Owner, item.Deliveries, request.Now, lostFrom)]);
                    entry.Events.AddRange(started);
                    AppendAudit(AuditLeaf.ForEvents(item.JobId, started));
                    entry.Record = entry.Record with
                    {
                        LastSeq = started[0].Seq,
                        HeadHash = started[0].Hash,
                        UpdatedAt = started[0].Timestamp,
                        Status = entry.Record.Status == JobStatus.Queued ? JobStatus.Running : entry.Record.Status,
                    };
                }

                result.Add(item.ToWorkItem(entry.Record));
            }

            return ValueTask.FromResult<IReadOnlyList<WorkItem>>(result);
        }
    }

    /// <summary>
    /// The ready items served round-robin across tenants (<see cref="TenantRotation"/>), starting with the tenant after
    /// the one served last, as the durable stores do; <paramref name="ready"/> is in each tenant's own order.
    /// </summary>
    private List<ItemEntry> ClaimFairly(IEnumerable<ItemEntry> ready, int max)
    {
        var byTenant = ready.GroupBy(i => _jobs[i.JobId].Record.Tenant, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var tenants = byTenant.Keys.Order(StringComparer.Ordinal).ToList();
        var after = _claimCursor is null ? tenants : tenants.Where(t => string.CompareOrdinal(t, _claimCursor) > 0).Concat(tenants.Where(t => string.CompareOrdinal(t, _claimCursor) <= 0)).ToList();
        var picked = TenantRotation.Interleave(after.Select(t => (IReadOnlyList<ItemEntry>)byTenant[t]).ToList(), max);
        if (picked.Count > 0) _claimCursor = _jobs[picked[^1].JobId].Record.Tenant;
        return picked;
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<long>> RenewLeasesAsync(IReadOnlyList<WorkItemLease> leases, DateTimeOffset expiresAt, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(leases);
        lock (_gate)
        {
            var renewed = new List<long>();
            foreach (var lease in leases)
            {
                if (_items.TryGetValue(lease.ItemId, out var item) && item.LeaseOwner == lease.Owner && item.Token == lease.Token)
                {
                    item.VisibleAt = expiresAt;
                    renewed.Add(lease.ItemId);
                }
            }

            return ValueTask.FromResult<IReadOnlyList<long>>(renewed);
        }
    }

    /// <inheritdoc />
    public ValueTask<bool> ReleaseAsync(WorkItemLease lease, DateTimeOffset availableAt, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (_items.TryGetValue(lease.ItemId, out var item) && item.LeaseOwner == lease.Owner && item.Token == lease.Token)
            {
                item.LeaseOwner = null;
                item.VisibleAt = availableAt;
                return ValueTask.FromResult(true);
            }

            return ValueTask.FromResult(false);
        }
    }

    /// <inheritdoc />
    public ValueTask<int> FenceJobAsync(JobId jobId, DateTimeOffset until, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            var fenced = 0;
            foreach (var item in _items.Values.Where(i => i.JobId == jobId))
            {
                item.Token++;
                item.LeaseOwner = null;
                if (item.VisibleAt < until) item.VisibleAt = until;
                fenced++;
            }

            return ValueTask.FromResult(fenced);
        }
    }

    /// <inheritdoc />
    public ValueTask CreateApiKeyAsync(ApiKeyRecord key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        lock (_gate)
        {
            if (_apiKeys.Any(k => k.KeyId == key.KeyId || k.Hash == key.Hash))
            {
                throw new InvalidOperationException($"An API key with id {key.KeyId} or the same hash exists.");
            }

            _apiKeys.Add(key);
            return ValueTask.CompletedTask;
        }
    }

    /// <inheritdoc />
    public ValueTask<ApiKeyRecord?> FindApiKeyAsync(string hash, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return ValueTask.FromResult(_apiKeys.FirstOrDefault(k => k.Hash == hash && k.RevokedAt is null));
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<ApiKeyRecord>> ListApiKeysAsync(string? tenant = null, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return ValueTask.FromResult<IReadOnlyList<ApiKeyRecord>>(_apiKeys.Where(k => tenant is null || k.Tenant == tenant).ToList());
        }
    }

    /// <inheritdoc />
    public ValueTask<bool> RevokeApiKeyAsync(string keyId, DateTimeOffset revokedAt, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            var i = _apiKeys.FindIndex(k => k.KeyId == keyId && k.RevokedAt is null);
            if (i < 0) return ValueTask.FromResult(false);
            _apiKeys[i] = _apiKeys[i] with { RevokedAt = revokedAt };
            return ValueTask.FromResult(true);
        }
    }

    /// <inheritdoc />
    public ValueTask<JobRecord?> GetJobAsync(JobId jobId, string tenant, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return ValueTask.FromResult(_jobs.TryGetValue(jobId, out var e) && e.Record.Tenant == tenant ? e.Record : null);
        }
    }

    /// <inheritdoc />
    public ValueTask<JobRecord?> GetJobAsync(JobId jobId, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return ValueTask.FromResult(_jobs.TryGetValue(jobId, out var e) ? e.Record : null);
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<JobRecord>> ListJobsAsync(JobQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        lock (_gate)
        {
            IEnumerable<JobRecord> all = _jobOrder.AsEnumerable().Reverse().Select(id => _jobs[id].Record);
            if (query.Status is { } s) all = all.Where(j => j.Status == s);
            if (query.Tenant is { } t) all = all.Where(j => j.Tenant == t);
            if (query.ParentJobId is { } p) all = all.Where(j => j.ParentJobId == p);
            if (query.Workflow is { } w) all = all.Where(j => j.Workflow == w);
            if (query.WorkflowVersion is { } v) all = all.Where(j => j.Version == v);
            if (query.After is { } after) all = all.SkipWhile(j => j.JobId != after).Skip(1);
            return ValueTask.FromResult<IReadOnlyList<JobRecord>>(all.Take(query.Limit).ToList());
        }
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<EventEnvelope> ReadEventsAsync(JobId jobId, long afterSeq = 0, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        EventEnvelope[] events;
        lock (_gate)
        {
            events = _jobs.TryGetValue(jobId, out var e) ? e.Events.Skip((int)Math.Max(0, afterSeq)).ToArray() : [];
        }

        foreach (var e in events)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return e;
        }

        await Task.CompletedTask.ConfigureAwait(false);
    }

    /// <inheritdoc />
    public ValueTask<StateSnapshot?> GetSnapshotAsync(JobId jobId, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return ValueTask.FromResult(_jobs.TryGetValue(jobId, out var e) ? e.Snapshot : null);
        }
    }

    /// <inheritdoc />
    public ValueTask<DefinitionRecord?> GetDefinitionAsync(string hash, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return ValueTask.FromResult(_definitions.GetValueOrDefault(hash));
        }
    }

    /// <inheritdoc />
    public ValueTask<QueueSummary> GetQueueSummaryAsync(JobId? rootJobId, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            JobId? tree = null;
            if (rootJobId is { } root)
            {
                if (!_jobs.TryGetValue(root, out var rootEntry)) return ValueTask.FromResult(new QueueSummary(0, 0, 0, null, []));
                tree = rootEntry.Record.RootJobId;
            }

            var items = _items.Values.Where(i => !IsWaitingTimer(i, now) && (tree is null || _jobs[i.JobId].Record.RootJobId == tree)).ToList();
            var ready = items.Count(i => i.VisibleAt <= now);
            var leased = items.Count(i => i.LeaseOwner is not null && i.VisibleAt > now);
            var delayed = items.Count(i => i.LeaseOwner is null && i.VisibleAt > now);
            var next = items.Where(i => i.VisibleAt > now).Select(i => (DateTimeOffset?)i.VisibleAt).Min();
            var owners = items.Where(i => i.LeaseOwner is not null && i.VisibleAt > now).Select(i => i.LeaseOwner!).Distinct().ToList();
            return ValueTask.FromResult(new QueueSummary(ready, delayed, leased, next, owners));
        }
    }

    private static bool IsWaitingTimer(ItemEntry item, DateTimeOffset now) => SystemItems.IsTimer(item.Step.StepId) && item.LeaseOwner is null && item.VisibleAt > now;

    /// <inheritdoc />
    public ValueTask SetKillSwitchAsync(KillSwitches.KillSwitch killSwitch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(killSwitch);
        lock (_gate) _switches[(killSwitch.Tenant ?? "", killSwitch.Target)] = killSwitch;
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<bool> ClearKillSwitchAsync(string target, string? tenant, CancellationToken cancellationToken = default)
    {
        lock (_gate) return ValueTask.FromResult(_switches.Remove((tenant ?? "", target)));
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<KillSwitches.KillSwitch>> ListKillSwitchesAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate) return ValueTask.FromResult<IReadOnlyList<KillSwitches.KillSwitch>>(_switches.Values.OrderBy(s => s.Target, StringComparer.Ordinal).ThenBy(s => s.Tenant ?? "", StringComparer.Ordinal).ToList());
    }

    /// <inheritdoc />
    public ValueTask SeedKillSwitchesAsync(string seed, IReadOnlyList<KillSwitches.KillSwitch> switches, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(switches);
        lock (_gate)
        {
            Seed(seed, switches);
        }

        return ValueTask.CompletedTask;
    }

    private void Seed(string seed, IReadOnlyList<KillSwitches.KillSwitch> switches)
    {
        if (_seeds.Add(seed))
        {
            foreach (var s in switches) _switches.TryAdd((s.Tenant ?? "", s.Target), s);
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<LeaseRecord>> ListLeasesAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return ValueTask.FromResult<IReadOnlyList<LeaseRecord>>(_items.Values.Where(i => i.LeaseOwner is not null).OrderBy(i => i.Id)
                .Select(i => new LeaseRecord(i.Id, i.JobId, i.WorkKey, i.LeaseOwner!, i.VisibleAt)).ToList());
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<JobRecord>> ListJobsWithoutWorkAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            var withWork = _items.Values.Select(i => i.JobId).ToHashSet();
            return ValueTask.FromResult<IReadOnlyList<JobRecord>>(_jobOrder.Select(id => _jobs[id].Record)
                .Where(r => !r.Status.IsTerminal() && !withWork.Contains(r.JobId)).ToList());
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <inheritdoc />
    public ValueTask<long> GetAuditLogSizeAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate) return ValueTask.FromResult(_auditFrontier.Size);
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<byte[]?>> ReadAuditNodesAsync(IReadOnlyList<MerkleNodeId> ids, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ids);
        lock (_gate) return ValueTask.FromResult<IReadOnlyList<byte[]?>>([.. ids.Select(id => _auditNodes.GetValueOrDefault(id))]);
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<MerkleNode> ReadStoredAuditNodesAsync(long size, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        List<MerkleNode> nodes;
        lock (_gate)
        {
            nodes = [.. _auditNodes.Where(kv => kv.Key.Level > 0 && kv.Value is not null && kv.Key.FirstLeaf + kv.Key.Leaves <= size)
                .Select(kv => new MerkleNode(kv.Key, kv.Value!))
                .OrderBy(n => n.Id.FirstLeaf + n.Id.Leaves).ThenBy(n => n.Id.Level)];
        }

        foreach (var node in nodes)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return node;
        }

        await Task.CompletedTask.ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<StoredAuditLeaf> ReadAuditLeavesAsync(long from, long to, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        List<StoredAuditLeaf> leaves;
        lock (_gate)
        {
            var start = (int)Math.Clamp(from, 0, _auditLeaves.Count);
            var end = (int)Math.Clamp(to, start, _auditLeaves.Count);
            leaves = _auditLeaves.GetRange(start, end - start);
        }

        foreach (var leaf in leaves)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return leaf;
        }

        await Task.CompletedTask.ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<StoredAuditLeaf> ReadAuditLeavesOfAsync(string subject, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        List<StoredAuditLeaf> leaves;
        lock (_gate) leaves = [.. _auditLeaves.Where(l => string.Equals(l.Leaf.Subject, subject, StringComparison.Ordinal))];
        foreach (var leaf in leaves)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return leaf;
        }

        await Task.CompletedTask.ConfigureAwait(false);
    }

    /// <inheritdoc />
    public ValueTask AddAuditCheckpointAsync(AuditCheckpoint checkpoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        lock (_gate) _checkpoints.Add(checkpoint);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<AuditCheckpoint?> GetLatestAuditCheckpointAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate) return ValueTask.FromResult(_checkpoints.Count == 0 ? null : _checkpoints[^1]);
    }

    /// <summary>Appends a leaf to the audit log, under the lock of the change it records.</summary>
    private void AppendAudit(AuditLeaf leaf)
    {
        var append = AuditLogAppender.Append(_auditFrontier, [leaf]);
        foreach (var stored in append.Leaves)
        {
            _auditLeaves.Add(stored);
            _auditNodes[new MerkleNodeId(0, stored.Index)] = stored.Hash;
        }

        foreach (var node in append.Interior) _auditNodes[node.Id] = node.Hash;
    }

    private static void CheckQuota(NewJob job, TenantQuota quota, IEnumerable<JobRecord> jobs)
    {
        var ofTenant = jobs.Where(r => r.Tenant == job.Tenant).ToList();
        if (quota.ConcurrentJobs is { } max)
        {
            var active = ofTenant.Count(r => !r.Status.IsTerminal());
            if (active >= max) throw new QuotaExceededException(job.Tenant, "concurrent_jobs", max, active);
        }

        if (quota.JobsPerMinute is { } perMinute)
        {
            var recent = ofTenant.Where(r => r.CreatedAt > job.CreatedAt - QuotaExceededException.RateWindow).Select(r => r.CreatedAt).Order().ToList();
            if (recent.Count >= perMinute) throw QuotaExceededException.OverRate(job.Tenant, perMinute, recent, job.CreatedAt);
        }
    }

    private ItemEntry AddItem(JobEntry job, NewWorkItem item)
    {
        var key = item.Step.WorkKey;
        if (!_itemKeys.Add((job.Record.JobId, key)))
        {
            throw new InvalidOperationException($"Job {job.Record.JobId} already has a work item {key}.");
        }

        var entry = new ItemEntry(++_nextItemId, job.Record.JobId, item.Step, key, item.Priority)
        {
            VisibleAt = item.LeaseOwner is null ? item.AvailableAt : item.LeaseExpiresAt,
            AvailableAt = item.AvailableAt,
            LeaseOwner = item.LeaseOwner,
            Token = item.LeaseOwner is null ? 0 : 1,
            Deliveries = item.LeaseOwner is null ? 0 : 1,
        };
        _items.Add(entry.Id, entry);
        return entry;
    }

    private void RemoveItem(long id)
    {
        if (_items.Remove(id, out var item))
        {
            _itemKeys.Remove((item.JobId, item.WorkKey));
        }
    }

    /// <inheritdoc />
    public ValueTask<Stats.StatsData> ReadStatsAsync(Stats.StatsQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        lock (_gate)
        {
            var jobs = _jobs.Values.Where(j => j.Record.CreatedAt >= query.Since
                && (query.Tenant is null || j.Record.Tenant == query.Tenant)
                && (query.Workflow is null || j.Record.Workflow == query.Workflow)
                && (query.Version is null || j.Record.Version == query.Version)
                && (!query.EndedOnly || j.Summary.Status.IsTerminal())).ToList();
            var versions = jobs.GroupBy(j => (j.Record.Workflow, j.Record.Version)).Select(g => new Stats.VersionTotals(
                g.Key.Workflow, g.Key.Version, g.Count(),
                g.Count(j => j.Summary.Status == JobStatus.Completed), g.Count(j => j.Summary.Status == JobStatus.Failed), g.Count(j => j.Summary.Status == JobStatus.Cancelled),
                g.Sum(j => j.Summary.Tokens), Money(g.Sum(j => j.Summary.Cost)), g.Sum(j => (long)j.Summary.Retries),
                g.Count(j => j.Summary.Rejections > 0), g.Count(j => j.Summary.Escalations > 0),
                [.. g.Where(j => j.Summary.EndedAt is not null).Select(j => Math.Round((j.Summary.EndedAt!.Value - j.Record.CreatedAt).TotalMilliseconds))])).ToList();
            var agents = jobs.SelectMany(j => j.Summary.Agents.Select(a => (j.Record, a.Key, a.Value)))
                .GroupBy(x => (x.Record.Workflow, x.Record.Version, x.Key.Agent, x.Key.PromptHash))
                .Select(g => new Stats.AgentTotals(g.Key.Workflow, g.Key.Version, g.Key.Agent, g.Key.PromptHash,
                    g.Sum(x => (long)x.Value.Calls), g.Sum(x => (long)x.Value.Failures), g.Sum(x => x.Value.Tokens), Money(g.Sum(x => x.Value.Cost)))).ToList();
            return ValueTask.FromResult(new Stats.StatsData(versions, agents));
        }

        // As the SQLite and PostgreSQL stores give a sum of costs: to 10 decimal places, without trailing zeros.
        static decimal Money(decimal value) => Math.Round(value, 10) / 1.000000000000000000000000000000000m;
    }

    /// <inheritdoc />
    public ValueTask<bool> AddReleaseRecordAsync(ReleaseRecord record, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        lock (_gate)
        {
            if (_releases.Any(r => r.Workflow == record.Workflow && r.Kind == record.Kind && r.Version == record.Version)) return ValueTask.FromResult(false);
            _releases.Add(record);
            return ValueTask.FromResult(true);
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<ReleaseRecord>> ListReleaseRecordsAsync(string? workflow = null, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return ValueTask.FromResult<IReadOnlyList<ReleaseRecord>>([.. _releases.Where(r => workflow is null || r.Workflow == workflow)]);
        }
    }

    /// <summary>A job's summary row: what <c>ordo stats</c> reads, kept at each commit.</summary>
    private sealed class JobSummary
    {
        public JobStatus Status { get; private set; }
        public DateTimeOffset? EndedAt { get; private set; }
        public long Tokens { get; private set; }
        public decimal Cost { get; private set; }
        public int Retries { get; private set; }
        public int Rejections { get; private set; }
        public int Escalations { get; private set; }
        public Dictionary<(string Agent, string PromptHash), AgentSummary> Agents { get; } = [];

        public void Apply(Stats.JobStatsDelta delta, JobStatus status, DateTimeOffset at)
        {
            Status = status;
            if (status.IsTerminal()) EndedAt ??= at;
            Tokens += delta.Tokens;
            Cost += delta.Cost;
            Retries += delta.Retries;
            Rejections += delta.Rejections;
            Escalations += delta.Escalations;
            foreach (var (key, a) in delta.Agents)
            {
                if (!Agents.TryGetValue(key, out var row)) Agents[key] = row = new AgentSummary();
                row.Calls += a.Calls;
                row.Failures += a.Failures;
                row.Tokens += a.Tokens;
                row.Cost += a.Cost;
            }
        }
    }

    private sealed class AgentSummary
    {
        public int Calls { get; set; }
        public int Failures { get; set; }
        public long Tokens { get; set; }
        public decimal Cost { get; set; }
    }

    private sealed class JobEntry(JobRecord record)
    {
        public JobRecord Record { get; set; } = record;
        public bool Shadow { get; init; }
        public JobSummary Summary { get; } = new();
        public List<EventEnvelope> Events { get; } = [];
        public StateSnapshot? Snapshot { get; set; }
    }

    private sealed class ItemEntry(long id, JobId jobId, StepRef step, string workKey, int priority)
    {
        public long Id { get; } = id;
        public JobId JobId { get; } = jobId;
        public StepRef Step { get; } = step;
        public string WorkKey { get; } = workKey;
        public int Priority { get; } = priority;
        public DateTimeOffset VisibleAt { get; set; }
        public DateTimeOffset AvailableAt { get; init; }
        public string? LeaseOwner { get; set; }
        public long Token { get; set; }
        public int Deliveries { get; set; }
        public int Lost { get; set; }
        public IReadOnlyList<string> LostOwners { get; set; } = [];

        public WorkItem ToWorkItem(JobRecord job) => new()
        {
            JobId = JobId,
            Step = Step,
            Tenant = job.Tenant,
            Priority = Priority,
            Deliveries = Deliveries,
            LostDeliveries = Lost,
            LostOwners = LostOwners,
            Lease = new WorkItemLease(Id, LeaseOwner!, Token, VisibleAt),
            AvailableAt = AvailableAt,
        };
    }
}
