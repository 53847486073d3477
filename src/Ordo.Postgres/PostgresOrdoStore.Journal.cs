using System.Runtime.CompilerServices;
using System.Text;
using Npgsql;
using Ordo.Audit;
using Ordo.Events;
using Ordo.Queue;
using Ordo.State;
using Ordo.Stats;
using Ordo.Storage;

namespace Ordo.Postgres;

/// <summary>The job journal: submissions, commits (one batch in one transaction each), and reads of jobs, events, snapshots and definitions.</summary>
public sealed partial class PostgresOrdoStore
{
    // A commit's events go in one statement (the columns as arrays, unnested), with the audit leaf that records them.
    private const string InsertEventsSql = """
        WITH e AS (
            INSERT INTO events(job_id, seq, type, step_id, visit, attempt, scope, ts, agent, prompt_hash, model, policy, payload, hash, trace_id, span_id)
            SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::integer[], $6::integer[], $7::text[], $8::bigint[], $9::text[], $10::text[],
                $11::text[], $12::text[], $13::text[], $14::bytea[], $15::text[], $16::text[]))
        INSERT INTO audit_pending(kind, subject, first_seq, last_seq, digest, hash) VALUES ($17, $1, $18, $19, $20, $21)
        """;

    // A step's commit when it writes nothing but its events, the job's head and summary row and its own work item (taken
    // over by the step that follows, or deleted): one statement instead of four. Each part is written only when the one
    // before it was: the job's head only under the lease (u), the rest only when the head moved (a); then the lease, and
    // after it the head, are checked in that order, so that the refusal is the one the batch of separate statements
    // would give. The removal of the job's other work, when it ends, stays a statement of its own after it: every part
    // of one statement reads the snapshot taken before it waited for the job's row, and would miss an item another
    // transaction added meanwhile.
    private const string StepCommitTailSql = """
        a AS (
            UPDATE jobs SET last_seq = $11, head_hash = $12, status = $13, reason = coalesce($14, reason), updated_at = coalesce($15, updated_at)
            WHERE job_id = $2 AND last_seq = $16 AND head_hash = $17 AND EXISTS (SELECT FROM u)
            RETURNING 1),
        e AS (
            INSERT INTO events(job_id, seq, type, step_id, visit, attempt, scope, ts, agent, prompt_hash, model, policy, payload, hash, trace_id, span_id)
            SELECT $2, x.* FROM unnest($18::bigint[], $19::text[], $20::text[], $21::integer[], $22::integer[], $23::text[], $24::bigint[], $25::text[], $26::text[],
                $27::text[], $28::text[], $29::text[], $30::bytea[], $31::text[], $32::text[]) AS x
            WHERE EXISTS (SELECT FROM a)),
        l AS (
            INSERT INTO audit_pending(kind, subject, first_seq, last_seq, digest, hash) SELECT $33, $2, $34, $35, $36, $37 WHERE EXISTS (SELECT FROM a)),
        s AS (
            UPDATE job_stats SET status = $13, ended_at = coalesce(ended_at, $38), tokens = tokens + $39, cost = cost + $40,
                retries = retries + $41, rejections = rejections + $42, escalations = escalations + $43
            WHERE job_id = $2 AND (status <> $13 OR $44) AND EXISTS (SELECT FROM a))
        SELECT CASE WHEN NOT EXISTS (SELECT FROM u) THEN ordo_check(false, 'lease') WHEN NOT EXISTS (SELECT FROM a) THEN ordo_check(false, 'conflict') END AS ordo_check,
            (SELECT max(tenant) FROM u) AS tenant
        """;

    private const string ContinueStepSql = """
        WITH u AS (
            UPDATE work_items SET work_key = $5, step_id = $6, visit = $7, attempt = $8, scope = $9, available_at = $10, created_at = $10,
                lease_token = lease_token + 1, deliveries = 1, lost = 0, lost_owners = NULL,
                visible_at = CASE WHEN visible_at < ($10 + $45) / 2 THEN $45 ELSE visible_at END
            WHERE item_id = $1 AND job_id = $2 AND lease_owner = $3 AND lease_token = $4
            RETURNING tenant),
        """ + "\n" + StepCommitTailSql;

    // The same when the step leaves no successor on its item: the item is deleted ($5-$10 are not used).
    private const string EndStepSql = """
        WITH u AS (
            DELETE FROM work_items WHERE item_id = $1 AND job_id = $2 AND lease_owner = $3 AND lease_token = $4
            RETURNING tenant),
        """ + "\n" + StepCommitTailSql;

    private const string InsertItemSql = """
        INSERT INTO work_items(job_id, root_id, work_key, step_id, visit, attempt, scope, tenant, priority, available_at, visible_at, lease_owner, lease_token, deliveries, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
        RETURNING item_id, tenant
        """;

    // The committing job's items take its root and tenant from its row, which the commit has locked already.
    private const string EnqueueSql = """
        INSERT INTO work_items(job_id, root_id, work_key, step_id, visit, attempt, scope, tenant, priority, available_at, visible_at, lease_owner, lease_token, deliveries, created_at)
        SELECT j.job_id, j.root_job_id, $2, $3, $4, $5, $6, j.tenant, $7, $8, $9, $10, $11, $11, $12 FROM jobs j WHERE j.job_id = $1
        RETURNING item_id, tenant
        """;

    private const string InsertJobSql = """
        INSERT INTO jobs(job_id, workflow, version, definition_hash, tenant, status, submitter, parent_job_id, root_job_id, trace_id, priority, created_at, updated_at, last_seq, head_hash, shadow)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
        """;

    /// <inheritdoc />
    public async ValueTask<JobRecord> SubmitAsync(NewJob job, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(job);
        CommitChecks.EnsureContinues(job.JobId, 0, EventChain.GenesisHash, job.Events);

        // A job under a quota is checked and written in a transaction of its own.
        return job.Quota is not null
            ? await SubmitAloneAsync(job, cancellationToken).ConfigureAwait(false)
            : await _submitGate.WriteAsync(job, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Writes submissions that waited for a slot in one transaction; null when the server refused one of them (a job
    /// that exists already, a root job that does not), and then nothing was written.
    /// </summary>
    private async Task<JobRecord[]?> SubmitTogetherAsync(IReadOnlyList<NewJob> jobs)
    {
        foreach (var item in jobs.SelectMany(j => j.WorkItems))
        {
            if (item.LeaseOwner is { } owner) await _locks.HoldAsync(owner, CancellationToken.None).ConfigureAwait(false);
        }

        var records = jobs.Select(NewRecord).ToArray();
        try
        {
            var ids = await WriteAsync(async c =>
            {
                await using var batch = new NpgsqlBatch(c);
                batch.BatchCommands.Add(new NpgsqlBatchCommand("BEGIN"));
                for (var i = 0; i < jobs.Count; i++) AddSubmission(batch, jobs[i], records[i]);
                if (jobs.Any(j => j.WorkItems.Any(w => w.LeaseOwner is null))) AddNotify(batch);
                batch.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT"));
                try
                {
                    return await RunBatchAsync(batch, CancellationToken.None).ConfigureAwait(false);
                }
                catch
                {
                    await RollbackQuietlyAsync(c).ConfigureAwait(false);
                    throw;
                }
            }, CancellationToken.None).ConfigureAwait(false);

            // Every item inserted returns its row, in the order of the jobs and of their items.
            var at = 0;
            for (var i = 0; i < jobs.Count; i++)
            {
                _definitions.TryAdd(jobs[i].Definition.Hash, 0);
                var leased = LeasedOf(jobs[i], ids.GetRange(at, Math.Min(jobs[i].WorkItems.Count, ids.Count - at)));
                at += jobs[i].WorkItems.Count;
                if (leased.Count > 0) records[i] = records[i] with { LeasedItems = leased };
            }

            return records;
        }
        catch (PostgresException e) when (e.SqlState is "ORDCF" || (e.SqlState == "23505" && e.ConstraintName == "jobs_pkey"))
        {
            return null;
        }
    }

    /// <summary>Adds a submission's statements: its root's check (a job of another's tree), the job, its events and its items.</summary>
    private void AddSubmission(NpgsqlBatch batch, NewJob job, JobRecord record)
    {
        if (job.RootJobId is { } root && root != job.JobId)
        {
            batch.BatchCommands.Add(Sql.Command("SELECT ordo_check(EXISTS (SELECT 1 FROM jobs WHERE job_id = $1), 'root')", Sql.Text(root.Value)));
        }

        AddJob(batch, job, record);
    }

    /// <summary>Writes one submission in a transaction of its own (checking its quota first when it has one).</summary>
    private async Task<JobRecord> SubmitAloneAsync(NewJob job, CancellationToken cancellationToken)
    {
        var record = NewRecord(job);
        foreach (var item in job.WorkItems)
        {
            if (item.LeaseOwner is { } owner) await _locks.HoldAsync(owner, cancellationToken).ConfigureAwait(false);
        }

        try
        {
            var ids = await WriteAsync(async c =>
            {
                await using var tx = job.Quota is null ? null : await c.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                if (job.Quota is { } quota) await CheckQuotaAsync(c, job, quota, cancellationToken).ConfigureAwait(false);
                await using var batch = new NpgsqlBatch(c);
                AddSubmission(batch, job, record);
                if (job.WorkItems.Any(w => w.LeaseOwner is null)) AddNotify(batch);
                var result = await RunBatchAsync(batch, cancellationToken).ConfigureAwait(false);
                if (tx is not null) await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
                return result;
            }, cancellationToken).ConfigureAwait(false);
            _definitions.TryAdd(job.Definition.Hash, 0);
            var leased = LeasedOf(job, ids);
            if (leased.Count > 0) record = record with { LeasedItems = leased };
        }
        catch (PostgresException e) when (e.SqlState == "23505" && e.ConstraintName == "jobs_pkey")
        {
            throw new InvalidOperationException($"Job {job.JobId} already exists.", e);
        }
        catch (PostgresException e) when (e.SqlState == "ORDCF")
        {
            throw new InvalidOperationException($"Root job {record.RootJobId} does not exist.", e);
        }

        return record;
    }

    private static List<WorkItem> LeasedOf(NewJob job, List<(long Id, string Tenant)> ids)
    {
        var leased = new List<WorkItem>();
        for (var i = 0; i < job.WorkItems.Count && i < ids.Count; i++)
        {
            var item = job.WorkItems[i];
            if (item.LeaseOwner is null) continue;
            leased.Add(new WorkItem
            {
                JobId = job.JobId, Step = item.Step, Tenant = job.Tenant, Priority = item.Priority, Deliveries = 1,
                Lease = new WorkItemLease(ids[i].Id, item.LeaseOwner, 1, item.LeaseExpiresAt),
            });
        }

        return leased;
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

    /// <summary>Adds a new job's statements: its kill switch seeds, its definition (unless known), the job, its events and its items (each returning its id).</summary>
    private void AddJob(NpgsqlBatch batch, NewJob job, JobRecord record)
    {
        foreach (var seed in job.KillSwitchSeeds) AddSeed(batch, seed.Seed, seed.Switches);
        if (!_definitions.ContainsKey(job.Definition.Hash))
        {
            AddDefinition(batch, job.Definition, Ms(job.CreatedAt));
        }

        batch.BatchCommands.Add(Sql.Command(InsertJobSql,
            Sql.Text(job.JobId.Value), Sql.Text(job.Workflow), Sql.Int(job.Version), Sql.Text(job.Definition.Hash), Sql.Text(job.Tenant), Sql.Text(job.Status.ToWire()),
            Sql.Text(job.Submitter), Sql.Text(job.ParentJobId?.Value), Sql.Text(record.RootJobId.Value), Sql.Text(job.TraceId), Sql.Int(job.Priority),
            Sql.Long(Ms(job.CreatedAt)), Sql.Long(Ms(record.UpdatedAt)), Sql.Long(record.LastSeq), Sql.Bytes(record.HeadHash), Sql.Bool(job.Shadow)));
        AddEvents(batch, job.JobId, job.Events);
        AddJobStats(batch, job);
        foreach (var item in job.WorkItems) AddItem(batch, job.JobId, record.RootJobId, job.Tenant, item, Ms(job.CreatedAt));
    }

    /// <summary>Adds the statement that appends <paramref name="events"/> to the job's log and their leaf to the audit log (nothing when there are none).</summary>
    private static void AddEvents(NpgsqlBatch batch, JobId jobId, IReadOnlyList<EventEnvelope> events)
    {
        if (events.Count == 0) return;
        batch.BatchCommands.Add(Sql.Command(InsertEventsSql, [Sql.Text(jobId.Value), .. EventParameters(jobId, events)]));
    }

    /// <summary>
    /// The parameters that carry <paramref name="events"/> (one array per column, in the column order of
    /// <see cref="InsertEventsSql"/>) and then their audit leaf (kind, first and last sequence number, digest, hash).
    /// </summary>
    private static NpgsqlParameter[] EventParameters(JobId jobId, IReadOnlyList<EventEnvelope> events)
    {
        var leaf = AuditLeaf.ForEvents(jobId, events);
        return [.. EventColumns(events), Sql.Int((int)leaf.Kind), Sql.Long(leaf.FirstSeq), Sql.Long(leaf.LastSeq), Sql.Bytes(leaf.Digest), Sql.Bytes(leaf.Hash())];
    }

    /// <summary>The parameters that carry <paramref name="events"/>: one array per column, in the column order of <see cref="InsertEventsSql"/>.</summary>
    private static NpgsqlParameter[] EventColumns(IReadOnlyList<EventEnvelope> events)
    {
        var n = events.Count;
        var seq = new long[n];
        var type = new string?[n];
        var step = new string?[n];
        var visit = new int?[n];
        var attempt = new int?[n];
        var scope = new string?[n];
        var ts = new long[n];
        var agent = new string?[n];
        var promptHash = new string?[n];
        var model = new string?[n];
        var policy = new string?[n];
        var payload = new string?[n];
        var hash = new byte[n][];
        var trace = new string?[n];
        var span = new string?[n];
        for (var i = 0; i < n; i++)
        {
            var e = events[i];
            (seq[i], type[i], step[i], visit[i], attempt[i], scope[i], ts[i]) = (e.Seq, e.Type, e.StepId, e.Visit, e.Attempt, e.Scope, Ms(e.Timestamp));
            (agent[i], promptHash[i], model[i], policy[i], payload[i], hash[i], trace[i], span[i]) = (e.Agent, e.PromptHash, e.Model, e.Policy, Utf8(e.Payload), e.Hash, e.TraceId, e.SpanId);
        }

        return
        [
            Sql.LongArray(seq), Sql.TextArray(type), Sql.TextArray(step), Sql.IntArray(visit), Sql.IntArray(attempt), Sql.TextArray(scope),
            Sql.LongArray(ts), Sql.TextArray(agent), Sql.TextArray(promptHash), Sql.TextArray(model), Sql.TextArray(policy), Sql.TextArray(payload),
            Sql.BytesArray(hash), Sql.TextArray(trace), Sql.TextArray(span),
        ];
    }

    private static void AddItem(NpgsqlBatch batch, JobId jobId, JobId rootId, string tenant, NewWorkItem item, long nowMs)
    {
        var leased = item.LeaseOwner is not null;
        batch.BatchCommands.Add(Sql.Command(InsertItemSql,
            Sql.Text(jobId.Value), Sql.Text(rootId.Value), Sql.Text(item.Step.WorkKey), Sql.Text(item.Step.StepId), Sql.Int(item.Step.Visit), Sql.Int(item.Step.Attempt),
            Sql.Text(item.Step.Scope), Sql.Text(tenant), Sql.Int(item.Priority), Sql.Long(Ms(item.AvailableAt)),
            Sql.Long(leased ? Ms(item.LeaseExpiresAt) : Ms(item.AvailableAt)), Sql.Text(item.LeaseOwner), Sql.Long(leased ? 1 : 0), Sql.Int(leased ? 1 : 0), Sql.Long(nowMs)));
    }

    /// <summary>Wakes the workers listening on this schema's channel when the transaction commits (not before, not if it rolls back).</summary>
    private void AddNotify(NpgsqlBatch batch) => batch.BatchCommands.Add(Sql.Command("SELECT pg_notify($1, '')", Sql.Text(_channel)));

    /// <summary>Tells the processes waiting for <paramref name="jobId"/> that it ended, when the transaction commits.</summary>
    private void AddEndedNotify(NpgsqlBatch batch, JobId jobId) => batch.BatchCommands.Add(Sql.Command("SELECT pg_notify($1, $2)", Sql.Text(_endedChannel), Sql.Text(jobId.Value)));

    /// <summary>Removes every work item of the job but <paramref name="keepItem"/> (0: none kept).</summary>
    private static void AddDropPendingWork(NpgsqlBatch batch, JobId jobId, long keepItem)
        => batch.BatchCommands.Add(Sql.Command("DELETE FROM work_items WHERE job_id = $1 AND item_id <> $2", Sql.Text(jobId.Value), Sql.Long(keepItem)));

    /// <inheritdoc />
    public async ValueTask<CommitResult> CommitAsync(JobCommit commit, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(commit);
        CommitChecks.EnsureContinues(commit.JobId, commit.ExpectedSeq, commit.ExpectedHeadHash, commit.Events);
        foreach (var child in commit.StartJobs) CommitChecks.EnsureContinues(child.JobId, 0, EventChain.GenesisHash, child.Events);
        if (commit.StartJobs.Select(j => j.JobId).Distinct().Count() != commit.StartJobs.Count) return CommitResult.Failed(CommitOutcome.Conflict);

        // A commit that starts jobs is written on its own (its children's rows are read back by position).
        return commit.StartJobs.Count > 0
            ? await CommitAloneAsync(commit, cancellationToken).ConfigureAwait(false)
            : commit.Ahead
                ? await CommitAheadAsync(commit, cancellationToken).ConfigureAwait(false)
                : await _commitGate.WriteAsync(commit, cancellationToken).ConfigureAwait(false);
    }

    private int _aheadInFlight;
    private long _writtenAhead;

    /// <inheritdoc />
    /// <remarks>While fewer than <see cref="PostgresStoreOptions.CommitsAhead"/> commits of this process wait ahead.</remarks>
    public bool CanCommitAhead => Volatile.Read(ref _aheadInFlight) < _options.CommitsAhead;

    /// <summary>How many commits sent ahead were written (for tests and diagnostics).</summary>
    internal long CommitsWrittenAhead => Interlocked.Read(ref _writtenAhead);

    /// <summary>
    /// Writes a commit sent before the one it continues is known to be written, on a connection of its own and outside
    /// the commit slots: its transaction first takes the job row's lock, so it waits for the transaction of the commit
    /// before it to end, and its statement then sees what that one wrote. If that commit is not written by then (it
    /// reached the server later, or was refused), this one finds the job elsewhere than it expects, or its item not
    /// leased as it expects, and is refused like any other: nothing is written. At most
    /// <see cref="PostgresStoreOptions.CommitsAhead"/> are at the server at once; more wait here for their turn.
    /// </summary>
    private async Task<CommitResult> CommitAheadAsync(JobCommit commit, CancellationToken cancellationToken)
    {
        if (_options.CommitsAhead == 0) return await _commitGate.WriteAsync(commit, cancellationToken).ConfigureAwait(false);
        Interlocked.Increment(ref _aheadInFlight);
        var entered = false;
        try
        {
            await _aheadSlots.WaitAsync(cancellationToken).ConfigureAwait(false);
            entered = true;
            await HoldLeaseOwnersAsync(commit, cancellationToken).ConfigureAwait(false);
            var (ids, tenant) = await WriteAsync(c => CommitCoreAsync(c, commit, cancellationToken, lockJobFirst: true), cancellationToken).ConfigureAwait(false);
            Interlocked.Increment(ref _writtenAhead);
            return new CommitResult(CommitOutcome.Committed, Leased(commit, ids, tenant));
        }
        catch (PostgresException e) when (e.SqlState is "ORDLL" or "ORDCF")
        {
            return CommitResult.Failed(e.SqlState == "ORDLL" ? CommitOutcome.LeaseLost : CommitOutcome.Conflict);
        }
        finally
        {
            if (entered) _aheadSlots.Release();
            Interlocked.Decrement(ref _aheadInFlight);
        }
    }

    /// <summary>Makes sure this process holds the liveness lock of every owner the commit leases items to.</summary>
    private async Task HoldLeaseOwnersAsync(JobCommit commit, CancellationToken cancellationToken)
    {
        foreach (var item in commit.Enqueue)
        {
            if (item.LeaseOwner is { } owner) await _locks.HoldAsync(owner, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>How many commits waited for a slot and were written in a group of several (for tests and diagnostics).</summary>
    internal long CommitsWrittenTogether => _commitGate.WrittenTogether;

    /// <summary>How many step commits were written as part of a run of one job's commits in one statement (for tests and diagnostics).</summary>
    internal long StepRunCommits => Interlocked.Read(ref _stepRunCommits);

    /// <summary>How many submissions waited for a slot and were written in a group of several (for tests and diagnostics).</summary>
    internal long SubmissionsWrittenTogether => _submitGate.WrittenTogether;

    /// <summary>Writes one commit in a transaction of its own.</summary>
    private async Task<CommitResult> CommitAloneAsync(JobCommit commit, CancellationToken cancellationToken)
    {
        await HoldLeaseOwnersAsync(commit, cancellationToken).ConfigureAwait(false);
        try
        {
            var (ids, tenant) = await WriteAsync(c => CommitCoreAsync(c, commit, cancellationToken), cancellationToken).ConfigureAwait(false);
            foreach (var child in commit.StartJobs) _definitions.TryAdd(child.Definition.Hash, 0);
            return new CommitResult(CommitOutcome.Committed, Leased(commit, ids, tenant));
        }
        catch (PostgresException e) when (e.SqlState is "ORDLL" or "ORDCF" || (e.SqlState == "23505" && e.ConstraintName == "jobs_pkey"))
        {
            // Refused inside the transaction: nothing was written. A job that does not exist is told apart only now, off the hot path.
            var exists = await ReadAsync(async c =>
            {
                await using var cmd = Sql.Command(c, "SELECT 1 FROM jobs WHERE job_id = $1", Sql.Text(commit.JobId.Value));
                return await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not null;
            }, cancellationToken).ConfigureAwait(false);
            return CommitResult.Failed(!exists ? CommitOutcome.NotFound : e.SqlState == "ORDLL" ? CommitOutcome.LeaseLost : CommitOutcome.Conflict);
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// The commits go as one batch in one transaction (one round trip, one WAL flush). When any of them is refused, that
    /// transaction writes nothing and they are committed again one by one, each on its own terms.
    /// </remarks>
    public IReadOnlyList<Task<CommitResult>> CommitInOrder(IReadOnlyList<JobCommit> commits, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(commits);
        if (commits.Count <= 1 || commits.Any(c => c.StartJobs.Count > 0))
        {
            return OrderedCommits.OneByOne(this, commits, cancellationToken);
        }

        var together = CommitTogetherAsync(commits, cancellationToken);
        // Made once for the group, by whichever commit needs it first: the one-by-one commits start when they are made.
        var fallback = new Lazy<IReadOnlyList<Task<CommitResult>>>(() => OrderedCommits.OneByOne(this, commits, cancellationToken), LazyThreadSafetyMode.ExecutionAndPublication);
        return [.. commits.Select(async (commit, i) => (await together.ConfigureAwait(false))?[i] ?? await fallback.Value[i].ConfigureAwait(false))];
    }

    /// <summary>The results of the commits written together, or null when they were not (then each goes on its own).</summary>
    private async Task<CommitResult[]?> CommitTogetherAsync(IReadOnlyList<JobCommit> commits, CancellationToken cancellationToken)
    {
        foreach (var commit in commits)
        {
            CommitChecks.EnsureContinues(commit.JobId, commit.ExpectedSeq, commit.ExpectedHeadHash, commit.Events);
            foreach (var item in commit.Enqueue)
            {
                if (item.LeaseOwner is { } owner) await _locks.HoldAsync(owner, cancellationToken).ConfigureAwait(false);
            }
        }

        try
        {
            return await WriteAsync(async c =>
            {
                await using var batch = new NpgsqlBatch(c);
                batch.BatchCommands.Add(new NpgsqlBatchCommand("BEGIN"));
                // Each entry: a run of commits written as one statement (a job's chained step commits), or one commit.
                var parts = new List<(int Start, int Count, int ChildItems)>();
                for (var i = 0; i < commits.Count;)
                {
                    var run = StepRun(commits, i);
                    if (run > 1) AddStepRun(batch, commits, i, run);
                    parts.Add((i, run, run > 1 ? 0 : AddCommit(batch, commits[i])));
                    i += run;
                }

                batch.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT"));
                List<(bool IsItem, long Id, string? Tenant)> rows;
                try
                {
                    rows = await ReadRowsAsync(batch, cancellationToken).ConfigureAwait(false);
                }
                catch
                {
                    await RollbackQuietlyAsync(c).ConfigureAwait(false);
                    throw;
                }

                var results = new CommitResult[commits.Count];
                var at = 0;
                foreach (var (start, count, childItems) in parts)
                {
                    if (count == 1)
                    {
                        var ((ids, tenant), next) = Split(rows, commits[start], childItems, at);
                        at = next;
                        results[start] = new CommitResult(CommitOutcome.Committed, Leased(commits[start], ids, tenant));
                        continue;
                    }

                    // A run's statement returns one row (its check, with the job's tenant) and inserts no item.
                    var runTenant = at < rows.Count && !rows[at].IsItem ? rows[at++].Tenant : null;
                    Interlocked.Add(ref _stepRunCommits, count);
                    for (var k = start; k < start + count; k++) results[k] = new CommitResult(CommitOutcome.Committed, Leased(commits[k], [], runTenant));
                }

                return results;
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState is "ORDLL" or "ORDCF" || (e.SqlState == "23505" && e.ConstraintName == "jobs_pkey"))
        {
            return null;
        }
    }

    /// <summary>The continued item's index in <see cref="JobCommit.Enqueue"/>: a successor leased to the acknowledging worker takes over the acknowledged row.</summary>
    private static int Continued(JobCommit commit)
    {
        if (commit.Ack is not { } ack || commit.KeepWorkItem) return -1;
        for (var i = 0; i < commit.Enqueue.Count; i++)
        {
            if (commit.Enqueue[i].LeaseOwner == ack.Owner) return i;
        }

        return -1;
    }

    /// <summary>Writes one commit's batch; with <paramref name="lockJobFirst"/>, after taking the job row's lock (a commit sent ahead).</summary>
    private async Task<(List<(long Id, string Tenant)> Ids, string? Tenant)> CommitCoreAsync(NpgsqlConnection c, JobCommit commit, CancellationToken cancellationToken, bool lockJobFirst = false)
    {
        await using var batch = new NpgsqlBatch(c);
        if (lockJobFirst) batch.BatchCommands.Add(Sql.Command("SELECT FROM jobs WHERE job_id = $1 FOR UPDATE", Sql.Text(commit.JobId.Value)));
        var childItems = AddCommit(batch, commit);
        var rows = await ReadRowsAsync(batch, cancellationToken).ConfigureAwait(false);
        return Split(rows, commit, childItems, 0).Result;
    }

    /// <summary>The rows a commit's batch returns, in order: the acknowledged item's tenant (<c>ordo_check</c>, with a tenant) and each inserted item's id and tenant.</summary>
    private static async Task<List<(bool IsItem, long Id, string? Tenant)>> ReadRowsAsync(NpgsqlBatch batch, CancellationToken cancellationToken)
    {
        var rows = new List<(bool, long, string?)>();
        await using var r = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        do
        {
            var kind = r.FieldCount == 2 ? r.GetName(0) : null;
            while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                if (kind == "item_id") rows.Add((true, r.GetInt64(0), r.GetString(1)));
                else if (kind == "ordo_check") rows.Add((false, 0, r.IsDBNull(1) ? null : r.GetString(1)));
            }
        }
        while (await r.NextResultAsync(cancellationToken).ConfigureAwait(false));
        return rows;
    }

    /// <summary>
    /// Takes one commit's rows from <paramref name="rows"/> at <paramref name="at"/>: its acknowledgement check (when it
    /// acknowledges), its started jobs' items (skipped), then one row per item it enqueued.
    /// </summary>
    private static ((List<(long Id, string Tenant)>, string?) Result, int Next) Split(List<(bool IsItem, long Id, string? Tenant)> rows, JobCommit commit, int childItems, int at)
    {
        string? tenant = null;
        if (commit.Ack is not null && at < rows.Count && !rows[at].IsItem) tenant = rows[at++].Tenant;
        at += childItems;
        var inserted = commit.Enqueue.Count - (Continued(commit) >= 0 ? 1 : 0);
        var ids = new List<(long, string)>(inserted);
        for (var k = 0; k < inserted && at < rows.Count; k++, at++) ids.Add((rows[at].Id, rows[at].Tenant!));
        return ((ids, tenant), at);
    }

    /// <summary>Adds a commit's statements to a batch (the checks first); returns how many item rows its started jobs add before its own.</summary>
    private int AddCommit(NpgsqlBatch batch, JobCommit commit)
    {
        var delta = JobStatsDelta.Of(commit.Events);
        if (TryAddStepCommit(batch, commit, delta)) return 0;
        NpgsqlParameter Job() => Sql.Text(commit.JobId.Value);
        var last = commit.Events.Count > 0 ? commit.Events[^1] : null;
        var nowMs = last is null ? 0 : Ms(last.Timestamp);
        var continued = Continued(commit);

        // 1. The lease, with its fencing token: checked (and the row locked) first, so a worker that lost it writes nothing.
        if (commit.Ack is { } ack)
        {
            var lease = new[] { Sql.Long(ack.ItemId), Sql.Text(commit.JobId.Value), Sql.Text(ack.Owner), Sql.Long(ack.Token) };
            if (commit.KeepWorkItem)
            {
                batch.BatchCommands.Add(Sql.Command(
                    "SELECT ordo_check(count(*) = 1, 'lease') AS ordo_check, max(tenant) AS tenant FROM (SELECT tenant FROM work_items WHERE item_id = $1 AND job_id = $2 AND lease_owner = $3 AND lease_token = $4 FOR SHARE) l",
                    lease));
            }
            else if (continued >= 0)
            {
                var step = commit.Enqueue[continued].Step;
                batch.BatchCommands.Add(Sql.Command("""
                    WITH u AS (
                        UPDATE work_items SET work_key = $5, step_id = $6, visit = $7, attempt = $8, scope = $9, available_at = $10, created_at = $10,
                            lease_token = lease_token + 1, deliveries = 1, lost = 0, lost_owners = NULL,
                            visible_at = CASE WHEN visible_at < ($10 + $11) / 2 THEN $11 ELSE visible_at END
                        WHERE item_id = $1 AND job_id = $2 AND lease_owner = $3 AND lease_token = $4
                        RETURNING tenant)
                    SELECT ordo_check(count(*) = 1, 'lease') AS ordo_check, max(tenant) AS tenant FROM u
                    """,
                    [.. lease, Sql.Text(step.WorkKey), Sql.Text(step.StepId), Sql.Int(step.Visit), Sql.Int(step.Attempt), Sql.Text(step.Scope),
                        Sql.Long(Ms(commit.Enqueue[continued].AvailableAt)), Sql.Long(Ms(commit.Enqueue[continued].LeaseExpiresAt))]));
            }
            else
            {
                batch.BatchCommands.Add(Sql.Command(
                    "WITH d AS (DELETE FROM work_items WHERE item_id = $1 AND job_id = $2 AND lease_owner = $3 AND lease_token = $4 RETURNING tenant) SELECT ordo_check(count(*) = 1, 'lease') AS ordo_check, max(tenant) AS tenant FROM d",
                    lease));
            }
        }

        // 2. The log: advanced only from the expected sequence number and head.
        batch.BatchCommands.Add(Sql.Command("""
            WITH a AS (
                UPDATE jobs SET last_seq = $1, head_hash = $2, status = $3, reason = coalesce($4, reason), updated_at = coalesce($5, updated_at)
                WHERE job_id = $6 AND last_seq = $7 AND head_hash = $8
                RETURNING 1)
            SELECT ordo_check(count(*) = 1, 'conflict') FROM a
            """,
            Sql.Long(last?.Seq ?? commit.ExpectedSeq), Sql.Bytes(last?.Hash ?? commit.ExpectedHeadHash), Sql.Text(commit.Status.ToWire()), Sql.Text(commit.Reason),
            Sql.Long(last is null ? null : nowMs), Job(), Sql.Long(commit.ExpectedSeq), Sql.Bytes(commit.ExpectedHeadHash)));

        if (commit.StartJobs.Count > 0)
        {
            batch.BatchCommands.Add(Sql.Command("SELECT ordo_check(NOT EXISTS (SELECT 1 FROM jobs WHERE job_id = ANY($1)), 'conflict')",
                Sql.TextArray([.. commit.StartJobs.Select(j => j.JobId.Value)])));
        }

        AddEvents(batch, commit.JobId, commit.Events);
        AddCommitStats(batch, commit.JobId, commit.Events, commit.Status, delta);

        // The row a leased successor took over is that successor, not pending work of the acknowledged step.
        var keepItem = continued >= 0 ? commit.Ack!.Value.ItemId : 0L;
        if (commit.DropPendingWork) AddDropPendingWork(batch, commit.JobId, keepItem);

        // A scope's items are the work keys that start with "scope/": the range ["scope/", "scope0") in byte order.
        foreach (var scope in commit.DropScopes)
        {
            batch.BatchCommands.Add(Sql.Command("DELETE FROM work_items WHERE job_id = $1 AND work_key >= $2 AND work_key < $3 AND item_id <> $4",
                Job(), Sql.Text(scope + "/"), Sql.Text(scope + "0"), Sql.Long(keepItem)));
        }

        var childItems = 0;
        foreach (var child in commit.StartJobs)
        {
            AddJob(batch, child, NewRecord(child));
            childItems += child.WorkItems.Count;
        }

        // Another job's item is added once: the target is locked (sorted, so two commits cannot wait on each other) and checked for the same work key.
        foreach (var other in commit.NotifyJobs.OrderBy(o => o.JobId.Value, StringComparer.Ordinal))
        {
            batch.BatchCommands.Add(Sql.Command("SELECT pg_advisory_xact_lock($1)", Sql.Long(WorkerLocks.Key("notify:" + other.JobId.Value, Schema))));
        }

        foreach (var other in commit.NotifyJobs)
        {
            var item = other.Item;
            batch.BatchCommands.Add(Sql.Command("""
                INSERT INTO work_items(job_id, root_id, work_key, step_id, visit, attempt, scope, tenant, priority, available_at, visible_at, lease_owner, lease_token, deliveries, created_at)
                SELECT j.job_id, j.root_job_id, $2, $3, $4, $5, $6, j.tenant, $7, $8, $8, NULL, 0, 0, $9 FROM jobs j
                WHERE j.job_id = $1 AND NOT EXISTS (SELECT 1 FROM work_items w WHERE w.job_id = $1 AND w.work_key = $2)
                """,
                Sql.Text(other.JobId.Value), Sql.Text(item.Step.WorkKey), Sql.Text(item.Step.StepId), Sql.Int(item.Step.Visit), Sql.Int(item.Step.Attempt), Sql.Text(item.Step.Scope),
                Sql.Int(item.Priority), Sql.Long(Ms(item.AvailableAt)), Sql.Long(nowMs)));
        }

        for (var i = 0; i < commit.Enqueue.Count; i++)
        {
            if (i == continued) continue;
            var item = commit.Enqueue[i];
            var leased = item.LeaseOwner is not null;
            batch.BatchCommands.Add(Sql.Command(EnqueueSql,
                Job(), Sql.Text(item.Step.WorkKey), Sql.Text(item.Step.StepId), Sql.Int(item.Step.Visit), Sql.Int(item.Step.Attempt), Sql.Text(item.Step.Scope),
                Sql.Int(item.Priority), Sql.Long(Ms(item.AvailableAt)), Sql.Long(leased ? Ms(item.LeaseExpiresAt) : Ms(item.AvailableAt)), Sql.Text(item.LeaseOwner),
                Sql.Int(leased ? 1 : 0), Sql.Long(nowMs)));
        }

        if (commit.Snapshot is { } snap)
        {
            batch.BatchCommands.Add(Sql.Command("INSERT INTO snapshots(job_id, seq, state) VALUES ($1, $2, $3) ON CONFLICT (job_id) DO UPDATE SET seq = excluded.seq, state = excluded.state",
                Job(), Sql.Long(snap.Seq), Sql.Bytes(snap.Data)));
        }

        if (commit.NotifyJobs.Count > 0 || commit.StartJobs.Count > 0 || commit.Enqueue.Any(w => w.LeaseOwner is null)) AddNotify(batch);
        if (commit.Status.IsTerminal()) AddEndedNotify(batch, commit.JobId);

        return childItems;
    }

    /// <summary>
    /// Adds a step's commit as one statement (<see cref="ContinueStepSql"/>, <see cref="EndStepSql"/>; then the removal
    /// of the job's other work when it ends) when it writes nothing else: no other work item, no started or notified
    /// job, no dropped scope, no snapshot, no agent calls to count. Returns false, adding nothing, for any other commit.
    /// </summary>
    private bool TryAddStepCommit(NpgsqlBatch batch, JobCommit commit, JobStatsDelta delta)
    {
        if (!IsStepCommit(commit, delta)) return false;
        var ack = commit.Ack!.Value;
        var continued = Continued(commit);

        var last = commit.Events[^1];
        var nowMs = Ms(last.Timestamp);
        var next = continued >= 0 ? commit.Enqueue[continued] : null;
        NpgsqlParameter[] parameters =
        [
            Sql.Long(ack.ItemId), Sql.Text(commit.JobId.Value), Sql.Text(ack.Owner), Sql.Long(ack.Token),
            Sql.Text(next?.Step.WorkKey), Sql.Text(next?.Step.StepId), Sql.Int(next?.Step.Visit), Sql.Int(next?.Step.Attempt), Sql.Text(next?.Step.Scope),
            Sql.Long(next is null ? null : Ms(next.AvailableAt)),
            Sql.Long(last.Seq), Sql.Bytes(last.Hash), Sql.Text(commit.Status.ToWire()), Sql.Text(commit.Reason), Sql.Long(nowMs),
            Sql.Long(commit.ExpectedSeq), Sql.Bytes(commit.ExpectedHeadHash),
            .. EventParameters(commit.JobId, commit.Events),
            Sql.Long(commit.Status.IsTerminal() ? nowMs : null), Sql.Long(delta.Tokens), Sql.Numeric(delta.Cost), Sql.Long(delta.Retries),
            Sql.Long(delta.Rejections), Sql.Long(delta.Escalations), Sql.Bool(!delta.IsEmpty),
        ];
        batch.BatchCommands.Add(next is null ? Sql.Command(EndStepSql, parameters) : Sql.Command(ContinueStepSql, [.. parameters, Sql.Long(Ms(next.LeaseExpiresAt))]));
        if (commit.DropPendingWork) AddDropPendingWork(batch, commit.JobId, ack.ItemId);
        if (commit.Status.IsTerminal()) AddEndedNotify(batch, commit.JobId);

        return true;
    }

    /// <summary>
    /// Whether a commit writes nothing but a step's events, the job's head and summary row and its own work item (taken
    /// over by the step that follows, or deleted): no other work item, no started or notified job, no dropped scope, no
    /// snapshot, no agent calls to count.
    /// </summary>
    private static bool IsStepCommit(JobCommit commit, JobStatsDelta? delta = null)
    {
        if (commit.Ack is null || commit.KeepWorkItem || commit.Events.Count == 0 || commit.StartJobs.Count > 0 || commit.NotifyJobs.Count > 0
            || commit.DropScopes.Count > 0 || commit.Snapshot is not null)
        {
            return false;
        }

        return commit.Enqueue.Count == (Continued(commit) >= 0 ? 1 : 0) && (delta ?? JobStatsDelta.Of(commit.Events)).Agents.Count == 0;
    }

    /// <summary>The enqueued items leased to the committing worker, with their ids (a new row's, or the continued row's with the next token).</summary>
    private static List<WorkItem> Leased(JobCommit commit, List<(long Id, string Tenant)> ids, string? ackTenant)
    {
        var leased = new List<WorkItem>();
        var continued = Continued(commit);
        var next = 0;
        for (var i = 0; i < commit.Enqueue.Count; i++)
        {
            var item = commit.Enqueue[i];
            long id;
            long token;
            string tenant;
            if (i == continued)
            {
                (id, token, tenant) = (commit.Ack!.Value.ItemId, commit.Ack.Value.Token + 1, ackTenant ?? "");
            }
            else
            {
                (id, tenant) = ids[next++];
                token = 1;
            }

            if (item.LeaseOwner is null) continue;
            leased.Add(new WorkItem
            {
                JobId = commit.JobId, Step = item.Step, Tenant = tenant, Priority = item.Priority, Deliveries = 1,
                Lease = new WorkItemLease(id, item.LeaseOwner, token, item.LeaseExpiresAt),
            });
        }

        return leased;
    }

    /// <summary>
    /// Refuses a submission over its tenant's quota, in the submission's transaction: a transaction-scoped advisory lock
    /// per tenant makes concurrent submitters of one tenant count and insert one after the other, on any machine.
    /// </summary>
    private async Task CheckQuotaAsync(NpgsqlConnection c, NewJob job, TenantQuota quota, CancellationToken cancellationToken)
    {
        await ExecAsync(c, "SELECT pg_advisory_xact_lock($1)", cancellationToken, Sql.Long(WorkerLocks.Key("quota:" + job.Tenant, Schema))).ConfigureAwait(false);
        if (quota.ConcurrentJobs is { } max)
        {
            await using var cmd = Sql.Command(c, "SELECT count(*) FROM jobs WHERE tenant = $1 AND status = ANY($2) AND NOT shadow", Sql.Text(job.Tenant), Sql.TextArray(ActiveStatuses));
            var active = Convert.ToInt32(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
            if (active >= max) throw new QuotaExceededException(job.Tenant, "concurrent_jobs", max, active);
        }

        if (quota.JobsPerMinute is { } perMinute)
        {
            await using var cmd = Sql.Command(c, "SELECT created_at FROM jobs WHERE tenant = $1 AND status = ANY($2) AND created_at > $3 AND NOT shadow ORDER BY created_at",
                Sql.Text(job.Tenant), Sql.TextArray(AllStatuses), Sql.Long(Ms(job.CreatedAt - QuotaExceededException.RateWindow)));
            var times = new List<DateTimeOffset>();
            await using (var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                while (await r.ReadAsync(cancellationToken).ConfigureAwait(false)) times.Add(At(r.GetInt64(0)));
            }

            if (times.Count >= perMinute) throw QuotaExceededException.OverRate(job.Tenant, perMinute, times, job.CreatedAt);
        }
    }

    private static readonly string[] ActiveStatuses = [.. Enum.GetValues<JobStatus>().Where(s => !s.IsTerminal()).Select(s => s.ToWire())];

    private static readonly string[] AllStatuses = [.. Enum.GetValues<JobStatus>().Select(s => s.ToWire())];

    private const string JobColumns = "job_id, workflow, version, tenant, status, reason, submitter, parent_job_id, root_job_id, definition_hash, trace_id, priority, created_at, updated_at, last_seq, head_hash, shadow";

    private static JobRecord ReadJob(NpgsqlDataReader r)
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
            CreatedAt = At(r.GetInt64(12)), UpdatedAt = At(r.GetInt64(13)), LastSeq = r.GetInt64(14), HeadHash = (byte[])r.GetValue(15),
            Shadow = r.GetBoolean(16),
        };
    }

    private async ValueTask<List<JobRecord>> ReadJobsAsync(string sql, CancellationToken cancellationToken, params NpgsqlParameter[] parameters)
        => await ReadAsync(async c =>
        {
            await using var cmd = Sql.Command(c, sql, parameters);
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var list = new List<JobRecord>();
            while (await r.ReadAsync(cancellationToken).ConfigureAwait(false)) list.Add(ReadJob(r));
            return list;
        }, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask<JobRecord?> GetJobAsync(JobId jobId, CancellationToken cancellationToken = default)
        => (await ReadJobsAsync($"SELECT {JobColumns} FROM jobs WHERE job_id = $1", cancellationToken, Sql.Text(jobId.Value)).ConfigureAwait(false)).FirstOrDefault();

    /// <inheritdoc />
    public async ValueTask<JobRecord?> GetJobAsync(JobId jobId, string tenant, CancellationToken cancellationToken = default)
        => (await ReadJobsAsync($"SELECT {JobColumns} FROM jobs WHERE job_id = $1 AND tenant = $2", cancellationToken, Sql.Text(jobId.Value), Sql.Text(tenant)).ConfigureAwait(false)).FirstOrDefault();

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<JobRecord>> ListJobsAsync(JobQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        return await ReadJobsAsync($"""
            SELECT {JobColumns} FROM jobs
            WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR tenant = $2) AND ($3::text IS NULL OR parent_job_id = $3)
              AND ($4::text IS NULL OR workflow = $4) AND ($5::integer IS NULL OR version = $5)
              AND ($6::text IS NULL OR (created_at, job_key) < (SELECT created_at, job_key FROM jobs WHERE job_id = $6))
            ORDER BY created_at DESC, job_key DESC LIMIT $7
            """, cancellationToken,
            Sql.Text(query.Status?.ToWire()), Sql.Text(query.Tenant), Sql.Text(query.ParentJobId?.Value), Sql.Text(query.Workflow), Sql.Int(query.WorkflowVersion),
            Sql.Text(query.After?.Value), Sql.Int(query.Limit)).ConfigureAwait(false);
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
        await using var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        // The tenant is filtered in the query, never read first and compared after.
        await using var cmd = Sql.Command(c, """
            SELECT seq, type, step_id, visit, attempt, scope, ts, agent, prompt_hash, model, policy, payload, hash, trace_id, span_id FROM events
            WHERE job_id = $1 AND seq >= $2 AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM jobs WHERE job_id = $1 AND tenant = $3))
            ORDER BY seq
            """, Sql.Text(jobId.Value), Sql.Long(Math.Max(0, afterSeq)), Sql.Text(tenant));
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        byte[] prev = afterSeq <= 0 ? EventChain.GenesisHash.ToArray() : null!;
        while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var seq = r.GetInt64(0);
            var hash = (byte[])r.GetValue(12);
            if (seq <= afterSeq)
            {
                prev = hash;
                continue;
            }

            prev ??= [];
            yield return new EventEnvelope(jobId, seq, r.GetString(1), At(r.GetInt64(6)), Encoding.UTF8.GetBytes(r.GetString(11)), hash, prev)
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
        => await ReadAsync(async c =>
        {
            await using var cmd = Sql.Command(c, "SELECT seq, state FROM snapshots WHERE job_id = $1", Sql.Text(jobId.Value));
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            return await r.ReadAsync(cancellationToken).ConfigureAwait(false) ? new StateSnapshot(r.GetInt64(0), (byte[])r.GetValue(1)) : null;
        }, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask<DefinitionRecord?> GetDefinitionAsync(string hash, CancellationToken cancellationToken = default)
        => await ReadAsync(async c =>
        {
            // With the digest its audit leaf recorded (sealed, or still pending), checked against the stored bytes.
            await using var cmd = Sql.Command(c, """
                SELECT d.hash, d.workflow, d.version, d.content,
                    coalesce((SELECT l.digest FROM audit_leaves l WHERE l.kind = 2 AND l.subject = d.hash ORDER BY l.idx LIMIT 1),
                             (SELECT p.digest FROM audit_pending p WHERE p.kind = 2 AND p.subject = d.hash ORDER BY p.id LIMIT 1))
                FROM definitions d WHERE d.hash = $1
                """, Sql.Text(hash));
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            return await r.ReadAsync(cancellationToken).ConfigureAwait(false)
                ? new DefinitionRecord(r.GetString(0), r.GetString(1), r.GetInt32(2), (byte[])r.GetValue(3)) { LoggedDigest = r.IsDBNull(4) ? null : (byte[])r.GetValue(4) }
                : null;
        }, cancellationToken).ConfigureAwait(false);
}
