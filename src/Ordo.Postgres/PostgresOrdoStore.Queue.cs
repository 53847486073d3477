using Npgsql;
using Ordo.Audit;
using Ordo.Events;
using Ordo.Queue;
using Ordo.State;
using Ordo.Storage;

namespace Ordo.Postgres;

/// <summary>The work queue: claims with <c>FOR UPDATE SKIP LOCKED</c>, tenants served in turn, leases renewed, released and taken over.</summary>
public sealed partial class PostgresOrdoStore
{
    private const string CandidateColumns = "w.item_id, w.job_id, w.step_id, w.visit, w.attempt, w.scope, w.tenant, w.priority, w.deliveries, w.lease_token, w.lease_owner, w.lost, w.lost_owners, w.visible_at";

    /// <summary>
    /// The fair claim in one statement: the tenants that have items, one index probe each (a skip scan), in turn from the
    /// one after the tenant served last; each tenant's next ready items in its own order (highest priority, then earliest
    /// available), skipping rows another worker has locked; then the rows of their jobs, locked in job id order so that
    /// two claims never wait on each other, read at their newest committed version.
    /// </summary>
    private const string ClaimFairSql = $"""
        WITH RECURSIVE tenants(tenant) AS (
            (SELECT tenant FROM work_items ORDER BY tenant LIMIT 1)
            UNION ALL
            SELECT (SELECT w.tenant FROM work_items w WHERE w.tenant > t.tenant ORDER BY w.tenant LIMIT 1) FROM tenants t WHERE t.tenant IS NOT NULL),
        turns AS (
            SELECT tenant, row_number() OVER (ORDER BY ($3::text IS NOT NULL AND tenant <= $3), tenant) AS turn FROM tenants WHERE tenant IS NOT NULL),
        picked AS MATERIALIZED (
            SELECT t.turn, x.* FROM turns t CROSS JOIN LATERAL (
                SELECT {CandidateColumns} FROM work_items w
                WHERE w.tenant = t.tenant AND (w.visible_at <= $1 OR w.lease_owner = ANY($2))
                ORDER BY w.priority DESC, w.visible_at, w.item_id LIMIT $4
                FOR UPDATE OF w SKIP LOCKED) x)
        SELECT p.*, j.last_seq, j.head_hash, j.status FROM picked p JOIN jobs j ON j.job_id = p.job_id
        ORDER BY j.job_id FOR NO KEY UPDATE OF j
        """;

    private const string ClaimRootSql = $"""
        WITH picked AS MATERIALIZED (
            SELECT 0::bigint AS turn, {CandidateColumns} FROM work_items w
            WHERE w.root_id = $3 AND (w.visible_at <= $1 OR w.lease_owner = ANY($2))
            ORDER BY w.priority DESC, w.visible_at, w.item_id LIMIT $4
            FOR UPDATE OF w SKIP LOCKED)
        SELECT p.*, j.last_seq, j.head_hash, j.status FROM picked p JOIN jobs j ON j.job_id = p.job_id
        ORDER BY j.job_id FOR NO KEY UPDATE OF j
        """;

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<WorkItem>> ClaimAsync(ClaimRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        // The claimer's liveness lock is held before any lease of its exists, so no other worker ever sees its lease without it.
        await _locks.HoldAsync(request.Owner, cancellationToken).ConfigureAwait(false);
        JobId? root = null;
        if (request.RootJobId is { } rootJob)
        {
            root = await GetTreeRootAsync(rootJob, cancellationToken).ConfigureAwait(false);
            if (root is null) return [];
        }

        return await WriteAsync(c => ClaimCoreAsync(c, request, root, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    private async Task<IReadOnlyList<WorkItem>> ClaimCoreAsync(NpgsqlConnection c, ClaimRequest request, JobId? root, CancellationToken cancellationToken)
    {
        var now = Ms(request.Now);
        var dead = request.DeadOwners is { Count: > 0 } d ? d.ToArray() : [];
        // Two round trips in all: BEGIN with the claim's query, then the leases, events and COMMIT in one batch.
        var candidates = new List<Candidate>();
        try
        {
            await using (var first = new NpgsqlBatch(c))
            {
                first.BatchCommands.Add(new NpgsqlBatchCommand("BEGIN"));
                first.BatchCommands.Add(root is null
                    ? Sql.Command(ClaimFairSql, Sql.Long(now), Sql.TextArray(dead), Sql.Text(_claimCursor), Sql.Int(request.MaxItems))
                    : Sql.Command(ClaimRootSql, Sql.Long(now), Sql.TextArray(dead), Sql.Text(root.Value.Value), Sql.Int(request.MaxItems)));
                await using var r = await first.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                do
                {
                    if (r.FieldCount < 18) continue;
                    while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        candidates.Add(new Candidate(
                            r.GetInt64(0), r.GetInt64(1), r.GetString(2), r.GetString(3), r.GetInt32(4), r.GetInt32(5), r.IsDBNull(6) ? null : r.GetString(6), r.GetString(7),
                            r.GetInt32(8), r.GetInt32(9), r.GetInt64(10), r.IsDBNull(11) ? null : r.GetString(11), r.GetInt32(12), r.IsDBNull(13) ? null : r.GetString(13),
                            r.GetInt64(14), r.GetInt64(15), (byte[])r.GetValue(16), r.GetString(17)));
                    }
                }
                while (await r.NextResultAsync(cancellationToken).ConfigureAwait(false));
            }

            if (candidates.Count == 0)
            {
                await ExecAsync(c, "COMMIT", cancellationToken).ConfigureAwait(false);
                return [];
            }

            return await LeaseAsync(c, request, root, candidates, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await RollbackQuietlyAsync(c).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Ends the transaction a failed claim left open, so the connection goes back to its pool clean.</summary>
    private static async Task RollbackQuietlyAsync(NpgsqlConnection c)
    {
        try
        {
            if (c.FullState == System.Data.ConnectionState.Open) await ExecAsync(c, "ROLLBACK", CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
        {
            // A broken connection is not returned to the pool; its transaction died with it.
        }
    }

    private async Task<IReadOnlyList<WorkItem>> LeaseAsync(NpgsqlConnection c, ClaimRequest request, JobId? root, List<Candidate> candidates, CancellationToken cancellationToken)
    {
        var groups = candidates.GroupBy(x => x.Turn).OrderBy(g => g.Key)
            .Select(g => (IReadOnlyList<Candidate>)[.. g.OrderByDescending(x => x.Priority).ThenBy(x => x.VisibleAt).ThenBy(x => x.Id)]).ToList();
        var picked = TenantRotation.Interleave(groups, request.MaxItems);
        if (root is null) _claimCursor = picked[^1].Tenant;

        await using var batch = new NpgsqlBatch(c);
        var heads = new Dictionary<string, (long Seq, byte[] Head, string Status, string OldStatus, long Ts)>(StringComparer.Ordinal);
        var expires = request.Now + request.LeaseDuration;
        var result = new List<WorkItem>(picked.Count);
        foreach (var x in picked)
        {
            var token = x.Token + 1;
            var deliveries = x.Deliveries + 1;
            // A lease that was not released was lost: its owner died or stopped renewing it.
            IReadOnlyList<string> lostOwners = x.LostOwners is null ? [] : x.LostOwners.Split('\n');
            var lost = x.Lost;
            if (x.Owner is { } lostFrom)
            {
                lost++;
                lostOwners = [.. lostOwners.TakeLast(StoreEvents.LostOwnersKept - 1), lostFrom];
            }

            batch.BatchCommands.Add(Sql.Command(
                "UPDATE work_items SET lease_owner = $1, lease_token = $2, deliveries = $3, visible_at = $4, lost = $6, lost_owners = $7 WHERE item_id = $5",
                Sql.Text(request.Owner), Sql.Long(token), Sql.Int(deliveries), Sql.Long(Ms(expires)), Sql.Long(x.Id), Sql.Int(lost),
                Sql.Text(lostOwners.Count == 0 ? null : string.Join('\n', lostOwners))));
            var step = new StepRef(x.StepId, x.Visit, x.Attempt, x.Scope);
            var jobId = new JobId(x.JobId);
            if (!SystemItems.IsSystem(x.StepId))
            {
                var head = heads.TryGetValue(x.JobId, out var h) ? h : (Seq: x.LastSeq, Head: x.HeadHash, Status: x.Status, OldStatus: x.Status, Ts: 0L);
                var started = EventChain.Seal(jobId, head.Seq, head.Head, [StoreEvents.StepStarted(step, request.Owner, deliveries, request.Now, x.Owner)]);
                AddEvents(batch, jobId, started);
                var status = head.Status == JobStatus.Queued.ToWire() ? JobStatus.Running.ToWire() : head.Status;
                heads[x.JobId] = (started[0].Seq, started[0].Hash, status, head.OldStatus, Ms(started[0].Timestamp));
            }

            result.Add(new WorkItem
            {
                JobId = jobId, Step = step, Tenant = x.Tenant, Priority = x.Priority, Deliveries = deliveries, LostDeliveries = lost, LostOwners = lostOwners,
                Lease = new WorkItemLease(x.Id, request.Owner, token, expires),
                // Never delivered before: it has been visible, so waiting, since it became available.
                AvailableAt = x.Deliveries == 0 ? At(x.VisibleAt) : null,
            });
        }

        foreach (var (jobId, head) in heads)
        {
            // The job's row is locked by this transaction since the claim read it: its head cannot have moved.
            batch.BatchCommands.Add(Sql.Command("UPDATE jobs SET last_seq = $1, head_hash = $2, status = $3, updated_at = $4 WHERE job_id = $5",
                Sql.Long(head.Seq), Sql.Bytes(head.Head), Sql.Text(head.Status), Sql.Long(head.Ts), Sql.Text(jobId)));
        }

        batch.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT"));
        await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        return result;
    }

    /// <summary>A ready work item as the claim reads it, with its job's head, before it is leased.</summary>
    private readonly record struct Candidate(
        long Turn, long Id, string JobId, string StepId, int Visit, int Attempt, string? Scope, string Tenant, int Priority, int Deliveries, long Token, string? Owner,
        int Lost, string? LostOwners, long VisibleAt, long LastSeq, byte[] HeadHash, string Status);

    /// <summary>The root of <paramref name="jobId"/>'s tree (work items carry it), or null when the job does not exist.</summary>
    private async ValueTask<JobId?> GetTreeRootAsync(JobId jobId, CancellationToken cancellationToken)
        => await ReadAsync(async c =>
        {
            await using var cmd = Sql.Command(c, "SELECT root_job_id FROM jobs WHERE job_id = $1", Sql.Text(jobId.Value));
            return await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is string s ? new JobId(s) : (JobId?)null;
        }, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<long>> RenewLeasesAsync(IReadOnlyList<WorkItemLease> leases, DateTimeOffset expiresAt, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(leases);
        if (leases.Count == 0) return [];
        return await WriteAsync(async c =>
        {
            // Only a lease still held with its token is extended: one taken over since keeps its new owner.
            await using var cmd = Sql.Command(c, """
                UPDATE work_items w SET visible_at = $1
                FROM unnest($2::bigint[], $3::text[], $4::bigint[]) AS l(id, owner, token)
                WHERE w.item_id = l.id AND w.lease_owner = l.owner AND w.lease_token = l.token
                RETURNING w.item_id
                """,
                Sql.Long(Ms(expiresAt)), Sql.LongArray([.. leases.Select(l => l.ItemId)]), Sql.TextArray([.. leases.Select(l => l.Owner)]), Sql.LongArray([.. leases.Select(l => l.Token)]));
            var renewed = new List<long>();
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await r.ReadAsync(cancellationToken).ConfigureAwait(false)) renewed.Add(r.GetInt64(0));
            return (IReadOnlyList<long>)renewed;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<bool> ReleaseAsync(WorkItemLease lease, DateTimeOffset availableAt, CancellationToken cancellationToken = default)
        => await WriteAsync(async c =>
        {
            await using var batch = new NpgsqlBatch(c);
            batch.BatchCommands.Add(Sql.Command("""
                WITH r AS (UPDATE work_items SET visible_at = $1, lease_owner = NULL WHERE item_id = $2 AND lease_owner = $3 AND lease_token = $4 RETURNING 1)
                SELECT count(*) AS released, pg_notify($5, '') FROM r HAVING count(*) > 0
                """, Sql.Long(Ms(availableAt)), Sql.Long(lease.ItemId), Sql.Text(lease.Owner), Sql.Long(lease.Token), Sql.Text(_channel)));
            await using var r = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            return await r.ReadAsync(cancellationToken).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    /// <remarks>
    /// One statement: it waits for a commit or a claim that holds one of the rows to end, and then applies to the row as
    /// that left it, so no commit that was checked against an old token can be written after it.
    /// </remarks>
    public async ValueTask<int> FenceJobAsync(JobId jobId, DateTimeOffset until, CancellationToken cancellationToken = default)
        => await WriteAsync(async c =>
        {
            await using var cmd = Sql.Command(c,
                "UPDATE work_items SET lease_token = lease_token + 1, lease_owner = NULL, visible_at = greatest(visible_at, $2) WHERE job_id = $1",
                Sql.Text(jobId.Value), Sql.Long(Ms(until)));
            return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask<QueueSummary> GetQueueSummaryAsync(JobId? rootJobId, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        JobId? root = null;
        if (rootJobId is { } r0)
        {
            root = await GetTreeRootAsync(r0, cancellationToken).ConfigureAwait(false);
            if (root is null) return new QueueSummary(0, 0, 0, null, []);
        }

        return await ReadAsync(async c =>
        {
            // Timers that have not fired are not work to wait for (SystemItems.IsTimer).
            await using var cmd = Sql.Command(c, """
                SELECT count(*) FILTER (WHERE visible_at <= $1),
                       count(*) FILTER (WHERE visible_at > $1 AND lease_owner IS NULL),
                       count(*) FILTER (WHERE visible_at > $1 AND lease_owner IS NOT NULL),
                       min(visible_at) FILTER (WHERE visible_at > $1),
                       array_remove(array_agg(DISTINCT lease_owner) FILTER (WHERE visible_at > $1), NULL)
                FROM work_items
                WHERE ($3::text IS NULL OR root_id = $3) AND NOT (step_id = $2 AND lease_owner IS NULL AND visible_at > $1)
                """, Sql.Long(Ms(now)), Sql.Text(SystemItems.ApprovalExpiry), Sql.Text(root?.Value));
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await r.ReadAsync(cancellationToken).ConfigureAwait(false);
            return new QueueSummary((int)r.GetInt64(0), (int)r.GetInt64(1), (int)r.GetInt64(2), r.IsDBNull(3) ? null : At(r.GetInt64(3)),
                r.IsDBNull(4) ? [] : r.GetFieldValue<string[]>(4));
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<LeaseRecord>> ListLeasesAsync(CancellationToken cancellationToken = default)
        => await ReadAsync(async c =>
        {
            await using var cmd = Sql.Command(c, "SELECT item_id, job_id, work_key, lease_owner, visible_at FROM work_items WHERE lease_owner IS NOT NULL ORDER BY item_id");
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var list = new List<LeaseRecord>();
            while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                list.Add(new LeaseRecord(r.GetInt64(0), new JobId(r.GetString(1)), r.GetString(2), r.GetString(3), At(r.GetInt64(4))));
            }

            return (IReadOnlyList<LeaseRecord>)list;
        }, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    /// <remarks>
    /// The worker listens on the schema's channel (<c>LISTEN</c> on a connection of its own); every transaction that
    /// adds work others may take notifies it when it commits. The connection is checked every
    /// <see cref="PostgresStoreOptions.ListenCheckInterval"/>; a lost one is opened again and its workers woken, in case a
    /// notification was missed meanwhile.
    /// </remarks>
    public IDisposable? WatchForWork(string worker, Action wake)
    {
        ArgumentNullException.ThrowIfNull(worker);
        ArgumentNullException.ThrowIfNull(wake);
        return _listener.Watch(wake);
    }

    /// <summary>
    /// Calls <paramref name="ended"/> with the id of each job that ends (completes, fails, is cancelled) in any process on
    /// this schema, as its commit commits; with null after the channel was lost and opened again (any job may have ended
    /// meanwhile). For a client that waits for jobs other processes run, without polling. Dispose the result to stop.
    /// </summary>
    public IDisposable WatchJobEnds(Action<JobId?> ended)
    {
        ArgumentNullException.ThrowIfNull(ended);
        return _endings.Watch(payload => ended(payload.Length == 0 ? null : new JobId(payload)));
    }

    /// <inheritdoc />
    /// <remarks>
    /// A worker holds a session advisory lock for as long as its process keeps its connection: when the process dies, the
    /// server ends its session and the lock with it, and the worker is <see cref="WorkerLiveness.Dead"/>. A worker that
    /// only stopped answering (paused, cut off) keeps it until the server drops its connection; its leases are waited out,
    /// and its late commits are refused by their fencing tokens.
    /// </remarks>
    public WorkerLiveness GetWorkerLiveness(string owner)
    {
        ArgumentNullException.ThrowIfNull(owner);
        try
        {
            return _locks.IsHeld(owner) ? WorkerLiveness.Alive : WorkerLiveness.Dead;
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException)
        {
            return WorkerLiveness.Unknown;
        }
    }
}
