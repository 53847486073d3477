using Npgsql;
using Ordo.Audit;
using Ordo.Queue;
using Ordo.State;
using Ordo.Stats;
using Ordo.Storage;

namespace Ordo.Postgres;

/// <summary>
/// Step commits of one job written together as one statement: the steps a job's lane gathered while it was written
/// (the branches of a fan-out, say) each advance the same job row, so a group of separate statements would update that
/// row, its summary and the work queue once per step. Written as one, the job's head moves once, from the first
/// step's expected head to the last step's, and every step still gets its own audit leaf, in order.
/// </summary>
public sealed partial class PostgresOrdoStore
{
    private long _stepRunCommits;

    private const string StepRunSql = """
        WITH d AS (
            DELETE FROM work_items w USING unnest($2::bigint[], $3::text[], $4::bigint[]) AS k(item_id, owner, token)
            WHERE w.item_id = k.item_id AND w.job_id = $1 AND w.lease_owner = k.owner AND w.lease_token = k.token
            RETURNING w.tenant),
        c AS (
            UPDATE work_items w SET work_key = v.work_key, step_id = v.step_id, visit = v.visit, attempt = v.attempt, scope = v.scope,
                available_at = v.available_at, created_at = v.available_at, lease_token = w.lease_token + 1, deliveries = 1, lost = 0, lost_owners = NULL,
                visible_at = CASE WHEN w.visible_at < (v.available_at + v.lease_expires_at) / 2 THEN v.lease_expires_at ELSE w.visible_at END
            FROM unnest($5::bigint[], $6::text[], $7::bigint[], $8::text[], $9::text[], $10::integer[], $11::integer[], $12::text[], $13::bigint[], $49::bigint[])
                AS v(item_id, owner, token, work_key, step_id, visit, attempt, scope, available_at, lease_expires_at)
            WHERE w.item_id = v.item_id AND w.job_id = $1 AND w.lease_owner = v.owner AND w.lease_token = v.token
            RETURNING w.tenant),
        u AS (SELECT tenant FROM d UNION ALL SELECT tenant FROM c),
        a AS (
            UPDATE jobs SET last_seq = $15, head_hash = $16, status = $17, reason = coalesce($18, reason), updated_at = coalesce($19, updated_at)
            WHERE job_id = $1 AND last_seq = $20 AND head_hash = $21 AND (SELECT count(*) FROM u) = $14
            RETURNING 1),
        e AS (
            INSERT INTO events(job_id, seq, type, step_id, visit, attempt, scope, ts, agent, prompt_hash, model, policy, payload, hash, trace_id, span_id)
            SELECT $1, x.* FROM unnest($22::bigint[], $23::text[], $24::text[], $25::integer[], $26::integer[], $27::text[], $28::bigint[], $29::text[], $30::text[],
                $31::text[], $32::text[], $33::text[], $34::bytea[], $35::text[], $36::text[]) AS x
            WHERE EXISTS (SELECT FROM a)),
        l AS (
            INSERT INTO audit_pending(kind, subject, first_seq, last_seq, digest, hash)
            SELECT x.kind, $1, x.first_seq, x.last_seq, x.digest, x.hash
            FROM unnest($37::integer[], $38::bigint[], $39::bigint[], $40::bytea[], $41::bytea[]) WITH ORDINALITY AS x(kind, first_seq, last_seq, digest, hash, n)
            WHERE EXISTS (SELECT FROM a)
            ORDER BY x.n),
        s AS (
            UPDATE job_stats SET status = $17, ended_at = coalesce(ended_at, $42), tokens = tokens + $43, cost = cost + $44,
                retries = retries + $45, rejections = rejections + $46, escalations = escalations + $47
            WHERE job_id = $1 AND (status <> $17 OR $48) AND EXISTS (SELECT FROM a))
        SELECT CASE WHEN (SELECT count(*) FROM u) <> $14 THEN ordo_check(false, 'lease') WHEN NOT EXISTS (SELECT FROM a) THEN ordo_check(false, 'conflict') END AS ordo_check,
            (SELECT max(tenant) FROM u) AS tenant
        """;

    /// <summary>
    /// How many commits from <paramref name="start"/> on can be written as one <see cref="StepRunSql"/>: step commits
    /// (<see cref="IsStepCommit"/>) of one job, each continuing the log exactly where the one before it left it, none but
    /// the last ending the job or dropping its work, each acknowledging an item of its own. 1 when the next one cannot.
    /// </summary>
    private static int StepRun(IReadOnlyList<JobCommit> commits, int start)
    {
        var first = commits[start];
        // Most groups hold one commit per job: those are told apart without looking at their events.
        if (start + 1 >= commits.Count || commits[start + 1].JobId != first.JobId || !IsStepCommit(first)) return 1;
        var items = new HashSet<long> { first.Ack!.Value.ItemId };
        var end = start + 1;
        while (end < commits.Count)
        {
            var (before, next) = (commits[end - 1], commits[end]);
            if (next.JobId != first.JobId || before.Status.IsTerminal() || before.DropPendingWork || !IsStepCommit(next)
                || next.ExpectedSeq != before.Events[^1].Seq || !next.ExpectedHeadHash.AsSpan().SequenceEqual(before.Events[^1].Hash)
                || !items.Add(next.Ack!.Value.ItemId))
            {
                break;
            }

            end++;
        }

        return end - start;
    }

    /// <summary>Adds <paramref name="count"/> commits from <paramref name="start"/> (a <see cref="StepRun"/>) as one statement, then what the last one adds after it.</summary>
    private void AddStepRun(NpgsqlBatch batch, IReadOnlyList<JobCommit> commits, int start, int count)
    {
        var run = commits.Skip(start).Take(count).ToList();
        var (first, last) = (run[0], run[^1]);
        var job = first.JobId;
        var ended = new List<JobCommit>();
        var continued = new List<(JobCommit Commit, NewWorkItem Next)>();
        foreach (var commit in run)
        {
            var c = Continued(commit);
            if (c >= 0) continued.Add((commit, commit.Enqueue[c]));
            else ended.Add(commit);
        }

        var events = run.SelectMany(c => c.Events).ToList();
        var leaves = run.Select(c => AuditLeaf.ForEvents(job, c.Events)).ToList();
        var delta = JobStatsDelta.Of(events);
        var head = events[^1];
        var nowMs = Ms(head.Timestamp);
        NpgsqlParameter[] parameters =
        [
            Sql.Text(job.Value),
            Sql.LongArray([.. ended.Select(c => c.Ack!.Value.ItemId)]), Sql.TextArray([.. ended.Select(c => c.Ack!.Value.Owner)]), Sql.LongArray([.. ended.Select(c => c.Ack!.Value.Token)]),
            Sql.LongArray([.. continued.Select(c => c.Commit.Ack!.Value.ItemId)]), Sql.TextArray([.. continued.Select(c => c.Commit.Ack!.Value.Owner)]),
            Sql.LongArray([.. continued.Select(c => c.Commit.Ack!.Value.Token)]), Sql.TextArray([.. continued.Select(c => c.Next.Step.WorkKey)]),
            Sql.TextArray([.. continued.Select(c => c.Next.Step.StepId)]), Sql.IntArray([.. continued.Select(c => (int?)c.Next.Step.Visit)]),
            Sql.IntArray([.. continued.Select(c => (int?)c.Next.Step.Attempt)]), Sql.TextArray([.. continued.Select(c => c.Next.Step.Scope)]),
            Sql.LongArray([.. continued.Select(c => Ms(c.Next.AvailableAt))]),
            Sql.Int(run.Count),
            Sql.Long(head.Seq), Sql.Bytes(head.Hash), Sql.Text(last.Status.ToWire()), Sql.Text(last.Reason), Sql.Long(nowMs),
            Sql.Long(first.ExpectedSeq), Sql.Bytes(first.ExpectedHeadHash),
            .. EventColumns(events),
            Sql.IntArray([.. leaves.Select(l => (int?)(int)l.Kind)]), Sql.LongArray([.. leaves.Select(l => l.FirstSeq)]), Sql.LongArray([.. leaves.Select(l => l.LastSeq)]),
            Sql.BytesArray([.. leaves.Select(l => l.Digest)]), Sql.BytesArray([.. leaves.Select(l => l.Hash())]),
            Sql.Long(last.Status.IsTerminal() ? nowMs : null), Sql.Long(delta.Tokens), Sql.Numeric(delta.Cost), Sql.Long(delta.Retries),
            Sql.Long(delta.Rejections), Sql.Long(delta.Escalations), Sql.Bool(!delta.IsEmpty),
            Sql.LongArray([.. continued.Select(c => Ms(c.Next.LeaseExpiresAt))]),
        ];
        batch.BatchCommands.Add(Sql.Command(StepRunSql, parameters));
        if (last.DropPendingWork) AddDropPendingWork(batch, job, last.Ack!.Value.ItemId);
        if (last.Status.IsTerminal()) AddEndedNotify(batch, job);
    }
}
