using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.Data.Sqlite;
using Ordo.Audit;
using Ordo.Events;
using Ordo.Queue;
using Ordo.State;
using Ordo.Storage;

namespace Ordo.Sqlite;

/// <summary>The work queue: claims with leases (taking over the leases of workers proven dead), renewals, releases, the queue's summary.</summary>
public sealed partial class SqliteOrdoStore
{
    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<WorkItem>> ClaimAsync(ClaimRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        long? rootKey = null;
        if (request.RootJobId is { } root)
        {
            rootKey = await GetTreeKeyAsync(root, cancellationToken).ConfigureAwait(false);
            if (rootKey is null) return [];
        }

        var dead = request.DeadOwners is { Count: > 0 } d ? System.Text.Json.JsonSerializer.Serialize(d.ToArray(), ClaimJson.Default.StringArray) : null;
        return await Writer.WriteAsync(c => ClaimCore(request, rootKey, dead)).ConfigureAwait(false);
    }

    private List<WorkItem> ClaimCore(ClaimRequest request, long? rootKey, string? deadOwners)
    {
        var s = Sql;
        var now = Ms(request.Now);
        List<Candidate> candidates;
        if (rootKey is null)
        {
            candidates = SelectFairly(now, deadOwners, request.MaxItems);
        }
        else
        {
            // One job tree is one tenant's: its own order is the fair one.
            candidates = [];
            using var r = s.SelectReadyForRoot.Set(now, deadOwners, request.MaxItems, rootKey.Value).ExecuteReader();
            while (r.Read()) candidates.Add(ReadCandidate(r));
        }

        var result = new List<WorkItem>(candidates.Count);
        if (candidates.Count > 0) _locks.Hold(request.Owner);
        var expires = request.Now + request.LeaseDuration;
        foreach (var c in candidates)
        {
            var token = c.Token + 1;
            var deliveries = c.Deliveries + 1;
            // A lease that was not released was lost: its owner died or stopped renewing it.
            IReadOnlyList<string> lostOwners = c.LostOwners is null ? [] : c.LostOwners.Split('\n');
            var lost = c.Lost;
            if (c.Owner is { } lostFrom)
            {
                lost++;
                lostOwners = [.. lostOwners.TakeLast(StoreEvents.LostOwnersKept - 1), lostFrom];
            }

            s.Lease.Set(request.Owner, token, deliveries, Ms(expires), c.Id, lost, lostOwners.Count == 0 ? null : string.Join('\n', lostOwners)).ExecuteNonQuery();
            var step = new StepRef(c.StepId, c.Visit, c.Attempt, c.Scope);
            var (jobId, lastSeq, head, status) = ReadHead(c.JobKey);
            if (!SystemItems.IsSystem(c.StepId))
            {
                var started = EventChain.Seal(jobId, lastSeq, head, [StoreEvents.StepStarted(step, request.Owner, deliveries, request.Now, c.Owner)]);
                InsertEvent(c.JobKey, started[0]);
                _auditLog?.Add(AuditLeaf.ForEvents(jobId, started));
                var newStatus = status == JobStatus.Queued.ToWire() ? JobStatus.Running.ToWire() : status;
                s.AdvanceJob.Set(started[0].Seq, started[0].Hash, newStatus, null, Ms(started[0].Timestamp), c.JobKey, lastSeq, head).ExecuteNonQuery();
            }

            _jobKeys.TryAdd(jobId, c.JobKey);
            result.Add(new WorkItem
            {
                JobId = jobId, Step = step, Tenant = c.Tenant, Priority = c.Priority, Deliveries = deliveries, LostDeliveries = lost, LostOwners = lostOwners,
                Lease = new WorkItemLease(c.Id, request.Owner, token, expires),
                AvailableAt = DateTimeOffset.FromUnixTimeMilliseconds(c.AvailableAt),
            });
        }

        return result;
    }

    /// <summary>
    /// Up to <paramref name="max"/> ready items, served round-robin across tenants: starting with the tenant after the
    /// one served last (<see cref="_claimCursor"/>), each tenant with ready work gives its next item (highest priority,
    /// then earliest available), then each its second, and so on. Each tenant costs one index probe to find and one
    /// short index scan for its items, so a claim never reads a whole queue, however many items one tenant has queued;
    /// it stops visiting tenants once it has <paramref name="max"/> that have work.
    /// </summary>
    private List<Candidate> SelectFairly(long now, string? deadOwners, int max)
    {
        var s = Sql;
        var groups = new List<List<Candidate>>();
        var visited = new HashSet<string>(StringComparer.Ordinal);
        var tenant = NextTenantAfter(_claimCursor);
        while (tenant is not null && groups.Count < max && visited.Add(tenant))
        {
            var items = new List<Candidate>();
            using (var r = s.SelectReadyOfTenant.Set(now, deadOwners, max, tenant).ExecuteReader())
            {
                while (r.Read()) items.Add(ReadCandidate(r));
            }

            if (items.Count > 0) groups.Add(items);
            tenant = NextTenantAfter(tenant);
        }

        var picked = TenantRotation.Interleave(groups, max);
        if (picked.Count > 0) _claimCursor = picked[^1].Tenant;
        return picked;
    }

    /// <summary>The tenant with items after <paramref name="tenant"/> in byte order, wrapping to the first; null when the queue is empty.</summary>
    private string? NextTenantAfter(string? tenant)
        => (tenant is null ? null : Sql.NextTenant.Set(tenant).ExecuteScalar() as string) ?? Sql.FirstTenant.Set().ExecuteScalar() as string;

    private static Candidate ReadCandidate(WriterStatements.Statement.Reader r)
        => new(r.GetInt64(0), r.GetInt64(1), r.GetString(2), r.GetInt32(3), r.GetInt32(4), r.IsDBNull(5) ? null : r.GetString(5), r.GetString(6), r.GetInt32(7), r.GetInt32(8), r.GetInt64(9),
            r.IsDBNull(10) ? null : r.GetString(10), r.GetInt32(11), r.IsDBNull(12) ? null : r.GetString(12), r.GetInt64(13));

    /// <summary>A ready work item as the claim reads it, before it is leased.</summary>
    private readonly record struct Candidate(long Id, long JobKey, string StepId, int Visit, int Attempt, string? Scope, string Tenant, int Priority, int Deliveries, long Token, string? Owner, int Lost, string? LostOwners, long AvailableAt);

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<long>> RenewLeasesAsync(IReadOnlyList<WorkItemLease> leases, DateTimeOffset expiresAt, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(leases);
        if (leases.Count == 0) return [];
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        return await Writer.WriteAsync(c =>
        {
            var renewed = new List<long>();
            foreach (var lease in leases)
            {
                if (Sql.Renew.Set(Ms(expiresAt), lease.ItemId, lease.Owner, lease.Token).ExecuteNonQuery() == 1) renewed.Add(lease.ItemId);
            }

            return renewed;
        }).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<bool> ReleaseAsync(WorkItemLease lease, DateTimeOffset availableAt, CancellationToken cancellationToken = default)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        var released = await Writer.WriteAsync(c => Sql.Release.Set(Ms(availableAt), lease.ItemId, lease.Owner, lease.Token).ExecuteNonQuery() == 1).ConfigureAwait(false);
        if (released) _bell.Ring();
        return released;
    }

    /// <inheritdoc />
    public async ValueTask<int> FenceJobAsync(JobId jobId, DateTimeOffset until, CancellationToken cancellationToken = default)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        if (await GetJobKeyAsync(jobId, cancellationToken).ConfigureAwait(false) is not { } key) return 0;
        return await Writer.WriteAsync(c =>
        {
            using var cmd = c.CreateCommand();
            // A job's items are few (what is in flight or waiting): the scan is not worth an index on every commit's path.
            cmd.CommandText = "UPDATE work_items SET lease_token = lease_token + 1, lease_owner = NULL, visible_at = max(visible_at, $until) WHERE job_key = $job";
            cmd.Parameters.AddWithValue("$until", Ms(until));
            cmd.Parameters.AddWithValue("$job", key);
            return cmd.ExecuteNonQuery();
        }).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<QueueSummary> GetQueueSummaryAsync(JobId? rootJobId, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        long? rootKey = null;
        if (rootJobId is { } root)
        {
            rootKey = await GetTreeKeyAsync(root, cancellationToken).ConfigureAwait(false);
            if (rootKey is null) return new QueueSummary(0, 0, 0, null, []);
        }

        using var c = OpenReader();
        using var cmd = c.CreateCommand();
        // Timers that have not fired are not work to wait for (SystemItems.IsTimer).
        const string NotWaitingTimer = "NOT (step_id = $timer AND lease_owner IS NULL AND visible_at > $now)";
        var filter = rootKey is null ? $"WHERE {NotWaitingTimer}" : $"WHERE root_key = $root AND {NotWaitingTimer}";
        cmd.CommandText = $"""
            SELECT coalesce(sum(visible_at <= $now), 0),
                   coalesce(sum(visible_at > $now AND lease_owner IS NULL), 0),
                   coalesce(sum(visible_at > $now AND lease_owner IS NOT NULL), 0),
                   min(CASE WHEN visible_at > $now THEN visible_at END)
            FROM work_items {filter};
            SELECT DISTINCT lease_owner FROM work_items {filter} AND lease_owner IS NOT NULL AND visible_at > $now;
            """;
        cmd.Parameters.AddWithValue("$now", Ms(now));
        cmd.Parameters.AddWithValue("$timer", SystemItems.ApprovalExpiry);
        if (rootKey is not null) cmd.Parameters.AddWithValue("$root", rootKey.Value);
        using var r = cmd.ExecuteReader();
        r.Read();
        var ready = r.GetInt32(0);
        var delayed = r.GetInt32(1);
        var leased = r.GetInt32(2);
        DateTimeOffset? next = r.IsDBNull(3) ? null : DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(3));
        var owners = new List<string>();
        if (r.NextResult())
        {
            while (r.Read()) owners.Add(r.GetString(0));
        }

        return new QueueSummary(ready, delayed, leased, next, owners);
    }

    /// <inheritdoc />
    public IDisposable? WatchForWork(string worker, Action wake)
    {
        ArgumentNullException.ThrowIfNull(worker);
        ArgumentNullException.ThrowIfNull(wake);
        // A worker that waits holds its lock like one that works: the watch marker of a live worker is never swept.
        _locks.Hold(worker);
        try
        {
            return _bell.Watch(worker, wake);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            return null;
        }
    }

    /// <inheritdoc />
    public WorkerLiveness GetWorkerLiveness(string owner)
    {
        ArgumentNullException.ThrowIfNull(owner);
        return _locks.Check(owner);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<LeaseRecord>> ListLeasesAsync(CancellationToken cancellationToken = default)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        using var c = OpenReader();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT w.item_id, j.job_id, w.work_key, w.lease_owner, w.visible_at FROM work_items w JOIN jobs j ON j.job_key = w.job_key WHERE w.lease_owner IS NOT NULL ORDER BY w.item_id";
        using var r = cmd.ExecuteReader();
        var list = new List<LeaseRecord>();
        while (r.Read())
        {
            list.Add(new LeaseRecord(r.GetInt64(0), new JobId(r.GetString(1)), r.GetString(2), r.GetString(3), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(4))));
        }

        return list;
    }

    /// <summary>The key of the top job of <paramref name="jobId"/>'s tree (work items carry it as their root), or null when the job does not exist.</summary>
    private async ValueTask<long?> GetTreeKeyAsync(JobId jobId, CancellationToken cancellationToken)
    {
        if (await GetJobKeyAsync(jobId, cancellationToken).ConfigureAwait(false) is not { } key) return null;
        if (_roots.TryGetValue(key, out var known)) return known.RootKey;
        using var c = OpenReader();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT r.job_key FROM jobs j JOIN jobs r ON r.job_id = j.root_job_id WHERE j.job_key = $k";
        cmd.Parameters.AddWithValue("$k", key);
        return cmd.ExecuteScalar() as long?;
    }

    /// <summary>At start: removes the lock files of workers that ended without leaving a lease behind.</summary>
    private void SweepWorkerLocks(SqliteConnection connection)
    {
        using var cmd = connection.CreateCommand();
        cmd.CommandText = "SELECT DISTINCT lease_owner FROM work_items WHERE lease_owner IS NOT NULL";
        using var r = cmd.ExecuteReader();
        var owners = new HashSet<string>(StringComparer.Ordinal);
        while (r.Read()) owners.Add(r.GetString(0));
        _locks.Sweep(owners);
    }
}
