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

/// <summary>The job journal: submissions, commits (one transaction each, or several together), and reads of jobs, events, snapshots and definitions.</summary>
public sealed partial class SqliteOrdoStore
{
    /// <inheritdoc />
    public async ValueTask<JobRecord> SubmitAsync(NewJob job, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(job);
        CommitChecks.EnsureContinues(job.JobId, 0, EventChain.GenesisHash, job.Events);
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        var record = NewRecord(job);
        var root = record.RootJobId;
        long rootKey = root == job.JobId ? 0 : await GetJobKeyAsync(root, cancellationToken).ConfigureAwait(false) ?? throw new InvalidOperationException($"Root job {root} does not exist.");
        try
        {
            var (key, root2, leased) = await Writer.WriteAsync(c => SubmitCore(job, record, rootKey)).ConfigureAwait(false);
            _jobKeys[job.JobId] = key;
            _roots[key] = (root2, job.Tenant);
            _definitions.TryAdd(job.Definition.Hash, 0);
            if (leased is not null) record = record with { LeasedItems = leased };
            if (job.WorkItems.Any(w => w.LeaseOwner is null)) _bell.Ring();
        }
        catch (SqliteException e) when (e.SqliteErrorCode == 19)
        {
            throw new InvalidOperationException($"Job {job.JobId} already exists.", e);
        }

        return record;
    }

    private static JobRecord NewRecord(NewJob job)
    {
        var last = job.Events.Count > 0 ? job.Events[^1] : null;
        return new JobRecord
        {
            JobId = job.JobId, Workflow = job.Workflow, Version = job.Version, Tenant = job.Tenant, Status = job.Status,
            Submitter = job.Submitter, ParentJobId = job.ParentJobId, RootJobId = job.RootJobId ?? job.JobId, DefinitionHash = job.Definition.Hash,
            TraceId = job.TraceId, Priority = job.Priority, CreatedAt = job.CreatedAt, UpdatedAt = last?.Timestamp ?? job.CreatedAt,
            LastSeq = last?.Seq ?? 0, HeadHash = last?.Hash ?? EventChain.GenesisHash.ToArray(), Shadow = job.Shadow,
        };
    }

    private (long Key, long RootKey, List<WorkItem>? Leased) SubmitCore(NewJob job, JobRecord record, long rootKey)
    {
        var s = Sql;
        if (job.Quota is { } quota)
        {
            CheckQuota(job, quota);
        }

        foreach (var seed in job.KillSwitchSeeds)
        {
            SeedCore(Writer.Connection, seed.Seed, seed.Switches);
        }

        // Definitions are immutable and keyed by content hash: one this store has written is not bound again.
        if (!_definitions.ContainsKey(job.Definition.Hash)
            && s.InsertDefinition.Set(job.Definition.Hash, job.Definition.Workflow, job.Definition.Version, job.Definition.Content, Ms(job.CreatedAt)).ExecuteNonQuery() == 1)
        {
            _auditLog?.Add(AuditLeaf.ForDefinition(job.Definition.Hash, job.Definition.Content));
        }

        var key = s.InsertJob.Set(
            job.JobId.Value, job.Workflow, job.Version, job.Definition.Hash, job.Tenant, job.Status.ToWire(), job.Submitter,
            job.ParentJobId?.Value, record.RootJobId.Value, job.TraceId, job.Priority, Ms(job.CreatedAt), Ms(record.UpdatedAt), record.LastSeq, record.HeadHash, job.Shadow ? 1 : 0).ExecuteInsert();
        if (rootKey == 0) rootKey = key;
        foreach (var e in job.Events) InsertEvent(key, e);
        if (job.Events.Count > 0) _auditLog?.Add(AuditLeaf.ForEvents(job.JobId, job.Events));
        s.InsertJobStats.Set(key, job.Tenant, job.Workflow, job.Version, Ms(job.CreatedAt), job.Status.ToWire()).ExecuteNonQuery();
        KeepStats(key, job.Events, job.Status, statusChanged: false);
        List<WorkItem>? leased = null;
        foreach (var item in job.WorkItems)
        {
            var id = InsertItem(key, rootKey, job.Tenant, item, Ms(job.CreatedAt));
            if (item.LeaseOwner is not null)
            {
                (leased ??= []).Add(new WorkItem
                {
                    JobId = job.JobId, Step = item.Step, Tenant = job.Tenant, Priority = item.Priority, Deliveries = 1,
                    Lease = new WorkItemLease(id, item.LeaseOwner, 1, item.LeaseExpiresAt),
                });
            }
        }

        return (key, rootKey, leased);
    }

    /// <inheritdoc />
    public async ValueTask<CommitResult> CommitAsync(JobCommit commit, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(commit);
        CommitChecks.EnsureContinues(commit.JobId, commit.ExpectedSeq, commit.ExpectedHeadHash, commit.Events);
        foreach (var child in commit.StartJobs) CommitChecks.EnsureContinues(child.JobId, 0, EventChain.GenesisHash, child.Events);
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        var key = await GetJobKeyAsync(commit.JobId, cancellationToken).ConfigureAwait(false);
        if (key is null)
        {
            return CommitResult.Failed(CommitOutcome.NotFound);
        }

        var result = await Committed(Writer.WriteAsync(c => CommitCore(commit, key.Value))).ConfigureAwait(false);
        RingFor(commit, result);
        return result;
    }

    /// <inheritdoc />
    /// <remarks>The commits are written in one transaction (up to <see cref="SqliteStoreOptions.MaxBatch"/>), each in its own savepoint.</remarks>
    public IReadOnlyList<Task<CommitResult>> CommitInOrder(IReadOnlyList<JobCommit> commits, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(commits);
        var writes = new List<Func<SqliteConnection, (CommitResult, List<StartedJob>?)>>(commits.Count);
        foreach (var commit in commits)
        {
            ArgumentNullException.ThrowIfNull(commit);
            // Only jobs whose key this store has seen are written together; anything else takes the one-by-one path.
            if (_writer is null || !_jobKeys.TryGetValue(commit.JobId, out var key))
            {
                return OrderedCommits.OneByOne(this, commits, cancellationToken);
            }

            CommitChecks.EnsureContinues(commit.JobId, commit.ExpectedSeq, commit.ExpectedHeadHash, commit.Events);
            foreach (var child in commit.StartJobs) CommitChecks.EnsureContinues(child.JobId, 0, EventChain.GenesisHash, child.Events);
            writes.Add(c => CommitCore(commit, key));
        }

        return [.. Writer.WriteAll(writes).Select(async (write, i) =>
        {
            var result = await Committed(write).ConfigureAwait(false);
            RingFor(commits[i], result);
            return result;
        })];
    }

    /// <summary>Rings the doorbell for a commit that gave other processes work to take.</summary>
    private void RingFor(JobCommit commit, CommitResult result)
    {
        if (result.Outcome == CommitOutcome.Committed && (commit.NotifyJobs.Count > 0 || commit.StartJobs.Count > 0 || commit.Enqueue.Any(w => w.LeaseOwner is null)))
        {
            _bell.Ring();
        }
    }

    private async Task<CommitResult> Committed(Task<(CommitResult Result, List<StartedJob>? Started)> write)
    {
        try
        {
            var (result, started) = await write.ConfigureAwait(false);
            if (started is not null)
            {
                // Only now that the transaction committed: a rolled-back job's key may be reused by another job.
                foreach (var job in started)
                {
                    _jobKeys[job.JobId] = job.Key;
                    _roots[job.Key] = (job.RootKey, job.Tenant);
                    _definitions.TryAdd(job.DefinitionHash, 0);
                }
            }

            return result;
        }
        catch (CommitRejectedException e)
        {
            return CommitResult.Failed(e.Outcome);
        }
    }

    private (CommitResult Result, List<StartedJob>? Started) CommitCore(JobCommit commit, long key)
    {
        var s = Sql;
        var last = commit.Events.Count > 0 ? commit.Events[^1] : null;
        var nowMs = last is null ? 0 : Ms(last.Timestamp);

        // A successor leased to the same worker takes over the acknowledged item's row (same id and lease, next token):
        // only unindexed columns change, which is most of the cost of a step's commit saved.
        var continued = -1;
        if (commit.Ack is { } ack)
        {
            bool held;
            if (commit.KeepWorkItem)
            {
                held = s.CheckLease.Set(ack.ItemId, key, ack.Owner, ack.Token).ExecuteScalar() is not null;
            }
            else
            {
                for (var i = 0; i < commit.Enqueue.Count && continued < 0; i++)
                {
                    if (commit.Enqueue[i].LeaseOwner == ack.Owner) continued = i;
                }

                if (continued >= 0)
                {
                    var step = commit.Enqueue[continued].Step;
                    held = s.ContinueLeased.Set(step.WorkKey, step.StepId, step.Visit, step.Attempt, step.Scope, Ms(commit.Enqueue[continued].AvailableAt), ack.ItemId, key, ack.Owner, ack.Token).ExecuteNonQuery() == 1;
                }
                else
                {
                    held = s.DeleteLeased.Set(ack.ItemId, key, ack.Owner, ack.Token).ExecuteNonQuery() == 1;
                }
            }

            if (!held) throw new CommitRejectedException(CommitOutcome.LeaseLost);
        }

        // Most commits leave the status as it is: try that first, and set the status only when it changes.
        ReadOnlySpan<object?> advance = [last?.Seq ?? commit.ExpectedSeq, last?.Hash ?? commit.ExpectedHeadHash, commit.Status.ToWire(), commit.Reason,
            last is null ? null : nowMs, key, commit.ExpectedSeq, commit.ExpectedHeadHash];
        var statusChanged = false;
        if (s.AdvanceJobSameStatus.Set(advance).ExecuteNonQuery() != 1)
        {
            if (s.AdvanceJob.Set(advance).ExecuteNonQuery() != 1) throw new CommitRejectedException(CommitOutcome.Conflict);
            statusChanged = true;
        }

        EnsureNewJobs(commit.StartJobs);

        foreach (var e in commit.Events) InsertEvent(key, e);
        if (commit.Events.Count > 0) _auditLog?.Add(AuditLeaf.ForEvents(commit.JobId, commit.Events));
        KeepStats(key, commit.Events, commit.Status, statusChanged);

        // The row a leased successor took over is that successor, not pending work of the acknowledged step.
        var keepItem = continued >= 0 ? commit.Ack!.Value.ItemId : 0L;
        if (commit.DropPendingWork || commit.DropScopes.Count > 0)
        {
            var root = ReadRootAndTenant(key).RootKey;
            if (commit.DropPendingWork) s.DropWork.Set(key, keepItem, root).ExecuteNonQuery();
            foreach (var scope in commit.DropScopes)
            {
                s.DropScope.Set(key, scope + "/", scope + "0", keepItem, root).ExecuteNonQuery();
            }
        }

        List<StartedJob>? started = null;
        foreach (var child in commit.StartJobs)
        {
            var record = NewRecord(child);
            var rootKey = record.RootJobId == child.JobId ? 0
                : FindJobKey(record.RootJobId, commit.JobId, key, started) ?? throw new InvalidOperationException($"Root job {record.RootJobId} does not exist.");
            var (childKey, childRootKey, _) = SubmitCore(child, record, rootKey);
            (started ??= []).Add(new StartedJob(child.JobId, childKey, childRootKey, child.Tenant, child.Definition.Hash));
        }

        foreach (var other in commit.NotifyJobs)
        {
            if (FindJobKey(other.JobId, commit.JobId, key, started) is not { } target) continue;
            var (rootKey, tenant) = RootAndTenantInTransaction(target, key, started);
            if (s.ItemExists.Set(target, other.Item.Step.WorkKey, rootKey).ExecuteScalar() is not null) continue;
            InsertItem(target, rootKey, tenant, other.Item, nowMs);
        }

        List<WorkItem>? leased = null;
        if (commit.Enqueue.Count > 0)
        {
            var (rootKey, tenant) = ReadRootAndTenant(key);
            for (var i = 0; i < commit.Enqueue.Count; i++)
            {
                var item = commit.Enqueue[i];
                var id = i == continued ? commit.Ack!.Value.ItemId : InsertItem(key, rootKey, tenant, item, nowMs);
                if (item.LeaseOwner is not null)
                {
                    var token = i == continued ? commit.Ack!.Value.Token + 1 : 1;
                    (leased ??= []).Add(new WorkItem
                    {
                        JobId = commit.JobId, Step = item.Step, Tenant = tenant, Priority = item.Priority, Deliveries = 1,
                        Lease = new WorkItemLease(id, item.LeaseOwner, token, item.LeaseExpiresAt),
                    });
                }
            }
        }

        if (commit.Snapshot is { } snap) s.PutSnapshot.Set(key, snap.Seq, snap.Data).ExecuteNonQuery();
        return (new CommitResult(CommitOutcome.Committed, (IReadOnlyList<WorkItem>?)leased ?? []), started);
    }

    /// <summary>Refuses the commit (nothing is written) when a job it would start exists or is started twice.</summary>
    private void EnsureNewJobs(IReadOnlyList<NewJob> jobs)
    {
        if (jobs.Count == 0) return;
        var ids = new HashSet<JobId>();
        foreach (var job in jobs)
        {
            if (!ids.Add(job.JobId) || Sql.JobKeyById.Set(job.JobId.Value).ExecuteScalar() is not null)
            {
                throw new CommitRejectedException(CommitOutcome.Conflict);
            }
        }
    }

    /// <summary>
    /// The key of a job as the running transaction sees it: the committing job, a job it started, or a stored one.
    /// Nothing is cached here, since the transaction may still roll back.
    /// </summary>
    private long? FindJobKey(JobId jobId, JobId committing, long committingKey, List<StartedJob>? started)
    {
        if (jobId == committing) return committingKey;
        if (started is not null)
        {
            foreach (var job in started)
            {
                if (job.JobId == jobId) return job.Key;
            }
        }

        if (_jobKeys.TryGetValue(jobId, out var known)) return known;
        return Sql.JobKeyById.Set(jobId.Value).ExecuteScalar() as long?;
    }

    private (long RootKey, string Tenant) RootAndTenantInTransaction(long key, long committingKey, List<StartedJob>? started)
    {
        if (key == committingKey || _roots.ContainsKey(key)) return ReadRootAndTenant(key);
        if (started is not null)
        {
            foreach (var job in started)
            {
                if (job.Key == key) return (job.RootKey, job.Tenant);
            }
        }

        using var r = Sql.RootAndTenant.Set(key).ExecuteReader();
        if (!r.Read()) throw new InvalidDataException($"job key {key} has no root job");
        return (r.GetInt64(0), r.GetString(1));
    }

    /// <inheritdoc />
    public async ValueTask<JobRecord?> GetJobAsync(JobId jobId, CancellationToken cancellationToken = default)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        using var c = OpenReader();
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT {JobColumns} FROM jobs WHERE job_id = $id";
        cmd.Parameters.AddWithValue("$id", jobId.Value);
        using var r = cmd.ExecuteReader();
        return r.Read() ? ReadJob(r) : null;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<JobRecord>> ListJobsAsync(JobQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        using var c = OpenReader();
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"""
            SELECT {JobColumns} FROM jobs
            WHERE ($status IS NULL OR status = $status) AND ($tenant IS NULL OR tenant = $tenant) AND ($parent IS NULL OR parent_job_id = $parent)
              AND ($workflow IS NULL OR workflow = $workflow) AND ($version IS NULL OR version = $version)
              AND ($after IS NULL OR (created_at, job_key) < (SELECT created_at, job_key FROM jobs WHERE job_id = $after))
            ORDER BY created_at DESC, job_key DESC LIMIT $limit
            """;
        cmd.Parameters.AddWithValue("$workflow", (object?)query.Workflow ?? DBNull.Value);
        cmd.Parameters.AddWithValue("$version", (object?)query.WorkflowVersion ?? DBNull.Value);
        cmd.Parameters.AddWithValue("$after", (object?)query.After?.Value ?? DBNull.Value);
        cmd.Parameters.AddWithValue("$status", (object?)query.Status?.ToWire() ?? DBNull.Value);
        cmd.Parameters.AddWithValue("$tenant", (object?)query.Tenant ?? DBNull.Value);
        cmd.Parameters.AddWithValue("$parent", (object?)query.ParentJobId?.Value ?? DBNull.Value);
        cmd.Parameters.AddWithValue("$limit", query.Limit);
        using var r = cmd.ExecuteReader();
        var list = new List<JobRecord>();
        while (r.Read()) list.Add(ReadJob(r));
        return list;
    }

    /// <inheritdoc />
    public async ValueTask<JobRecord?> GetJobAsync(JobId jobId, string tenant, CancellationToken cancellationToken = default)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        using var c = OpenReader();
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT {JobColumns} FROM jobs WHERE job_id = $id AND tenant = $tenant";
        cmd.Parameters.AddWithValue("$id", jobId.Value);
        cmd.Parameters.AddWithValue("$tenant", tenant);
        using var r = cmd.ExecuteReader();
        return r.Read() ? ReadJob(r) : null;
    }

    /// <inheritdoc />
    public IAsyncEnumerable<EventEnvelope> ReadEventsAsync(JobId jobId, long afterSeq = 0, CancellationToken cancellationToken = default)
        => ReadEventsCoreAsync(jobId, null, afterSeq, cancellationToken);

    /// <inheritdoc />
    public IAsyncEnumerable<EventEnvelope> ReadEventsAsync(JobId jobId, string tenant, long afterSeq = 0, CancellationToken cancellationToken = default)
        => ReadEventsCoreAsync(jobId, tenant ?? throw new ArgumentNullException(nameof(tenant)), afterSeq, cancellationToken);

    private async IAsyncEnumerable<EventEnvelope> ReadEventsCoreAsync(JobId jobId, string? tenant, long afterSeq, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        var key = tenant is null ? await GetJobKeyAsync(jobId, cancellationToken).ConfigureAwait(false) : GetTenantJobKey(jobId, tenant);
        if (key is null) yield break;
        using var c = OpenReader();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT seq, type, step_id, visit, attempt, scope, ts, agent, prompt_hash, model, policy, payload, hash, trace_id, span_id FROM events WHERE job_key = $k AND seq >= $from ORDER BY seq";
        cmd.Parameters.AddWithValue("$k", key.Value);
        cmd.Parameters.AddWithValue("$from", Math.Max(0, afterSeq));
        using var r = cmd.ExecuteReader();
        byte[] prev = afterSeq <= 0 ? EventChain.GenesisHash.ToArray() : null!;
        while (r.Read())
        {
            cancellationToken.ThrowIfCancellationRequested();
            var seq = r.GetInt64(0);
            var hash = SqliteContent.Bytes(r, 12);
            if (seq <= afterSeq)
            {
                prev = hash;
                continue;
            }

            prev ??= [];
            yield return new EventEnvelope(jobId, seq, r.GetString(1), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(6)), Encoding.UTF8.GetBytes(r.GetString(11)), hash, prev)
            {
                StepId = r.IsDBNull(2) ? null : r.GetString(2),
                Visit = r.IsDBNull(3) ? null : r.GetInt32(3),
                Attempt = r.IsDBNull(4) ? null : r.GetInt32(4),
                Scope = r.IsDBNull(5) ? null : r.GetString(5),
                Agent = r.IsDBNull(7) ? null : r.GetString(7),
                PromptHash = r.IsDBNull(8) ? null : r.GetString(8),
                Model = r.IsDBNull(9) ? null : r.GetString(9),
                Policy = r.IsDBNull(10) ? null : r.GetString(10),
                TraceId = r.IsDBNull(13) ? null : r.GetString(13),
                SpanId = r.IsDBNull(14) ? null : r.GetString(14),
            };
            prev = hash;
        }
    }

    /// <inheritdoc />
    public async ValueTask<StateSnapshot?> GetSnapshotAsync(JobId jobId, CancellationToken cancellationToken = default)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        var key = await GetJobKeyAsync(jobId, cancellationToken).ConfigureAwait(false);
        if (key is null) return null;
        using var c = OpenReader();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT seq, state FROM snapshots WHERE job_key = $k";
        cmd.Parameters.AddWithValue("$k", key.Value);
        using var r = cmd.ExecuteReader();
        return r.Read() ? new StateSnapshot(r.GetInt64(0), (byte[])r.GetValue(1)) : null;
    }

    /// <inheritdoc />
    public async ValueTask<DefinitionRecord?> GetDefinitionAsync(string hash, CancellationToken cancellationToken = default)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        using var c = OpenReader();
        using var cmd = c.CreateCommand();
        // With the digest its audit leaf recorded (audit_definition_leaves: definition leaves only, so no commit writes it).
        cmd.CommandText = """
            SELECT d.hash, d.workflow, d.version, d.content,
                (SELECT l.digest FROM audit_leaves l WHERE l.kind = 2 AND l.subject = d.hash ORDER BY l.idx LIMIT 1)
            FROM definitions d WHERE d.hash = $h
            """;
        cmd.Parameters.AddWithValue("$h", hash);
        using var r = cmd.ExecuteReader();
        return r.Read()
            ? new DefinitionRecord(r.GetString(0), r.GetString(1), r.GetInt32(2), SqliteContent.Bytes(r, 3)) { LoggedDigest = r.IsDBNull(4) ? null : SqliteContent.Bytes(r, 4) }
            : null;
    }

    /// <summary>
    /// Refuses a submission over its tenant's quota. It runs in the writer's transaction, before the insert: SQLite
    /// lets one transaction write at a time (across processes too), so no other submission can be counted between
    /// this count and this insert, and concurrent submitters cannot all pass.
    /// </summary>
    private void CheckQuota(NewJob job, TenantQuota quota)
    {
        var c = Writer.Connection;
        if (quota.ConcurrentJobs is { } max)
        {
            using var cmd = c.CreateCommand();
            cmd.CommandText = $"SELECT count(*) FROM jobs WHERE tenant = $t AND status IN ({ActiveStatuses}) AND shadow = 0";
            cmd.Parameters.AddWithValue("$t", job.Tenant);
            var active = Convert.ToInt32(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
            if (active >= max) throw new QuotaExceededException(job.Tenant, "concurrent_jobs", max, active);
        }

        if (quota.JobsPerMinute is { } perMinute)
        {
            // Every status listed, so the index on (tenant, status, created_at) reads only the window of each status,
            // not every job the tenant ever had.
            using var cmd = c.CreateCommand();
            cmd.CommandText = $"SELECT count(*) FROM jobs WHERE tenant = $t AND status IN ({AllStatuses}) AND created_at > $since AND shadow = 0";
            cmd.Parameters.AddWithValue("$t", job.Tenant);
            cmd.Parameters.AddWithValue("$since", Ms(job.CreatedAt - QuotaExceededException.RateWindow));
            var recent = Convert.ToInt32(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
            if (recent >= perMinute)
            {
                cmd.CommandText = $"SELECT created_at FROM jobs WHERE tenant = $t AND status IN ({AllStatuses}) AND created_at > $since AND shadow = 0 ORDER BY created_at";
                var times = new List<DateTimeOffset>(recent);
                using (var r = cmd.ExecuteReader())
                {
                    while (r.Read()) times.Add(DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(0)));
                }

                throw QuotaExceededException.OverRate(job.Tenant, perMinute, times, job.CreatedAt);
            }
        }
    }

    private static readonly string ActiveStatuses = string.Join(", ", Enum.GetValues<JobStatus>().Where(s => !s.IsTerminal()).Select(s => $"'{s.ToWire()}'"));

    private static readonly string AllStatuses = string.Join(", ", Enum.GetValues<JobStatus>().Select(s => $"'{s.ToWire()}'"));

    private const string JobColumns = "job_id, workflow, version, tenant, status, reason, submitter, parent_job_id, root_job_id, definition_hash, trace_id, priority, created_at, updated_at, last_seq, head_hash, shadow";

    private static JobRecord ReadJob(SqliteDataReader r)
    {
        if (!JobStatusNames.TryParse(r.GetString(4), out var status))
        {
            throw new InvalidDataException($"job {r.GetString(0)} has an unknown status '{r.GetString(4)}'");
        }

        return new JobRecord
        {
            JobId = new JobId(r.GetString(0)), Workflow = r.GetString(1), Version = r.GetInt32(2), Tenant = r.GetString(3), Status = status,
            Reason = r.IsDBNull(5) ? null : r.GetString(5), Submitter = r.GetString(6), ParentJobId = r.IsDBNull(7) ? null : new JobId(r.GetString(7)),
            RootJobId = new JobId(r.GetString(8)), DefinitionHash = r.GetString(9), TraceId = r.GetString(10), Priority = r.GetInt32(11),
            CreatedAt = DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(12)), UpdatedAt = DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(13)),
            LastSeq = r.GetInt64(14), HeadHash = SqliteContent.Bytes(r, 15), Shadow = r.GetInt64(16) != 0,
        };
    }

    /// <summary>The key of a job of one tenant, filtered in the query (never read first and compared after).</summary>
    private long? GetTenantJobKey(JobId jobId, string tenant)
    {
        using var c = OpenReader();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT job_key FROM jobs WHERE job_id = $id AND tenant = $tenant";
        cmd.Parameters.AddWithValue("$id", jobId.Value);
        cmd.Parameters.AddWithValue("$tenant", tenant);
        return cmd.ExecuteScalar() is long k ? k : null;
    }
}
