using System.Text;
using Npgsql;
using Ordo.Events;
using Ordo.State;
using Ordo.Stats;
using Ordo.Storage;

namespace Ordo.Postgres;

/// <summary>
/// The summary rows of <c>ordo stats</c>: written by the statements of the batch that appends the events (so a commit
/// that is refused changes no figure), summed per workflow version with queries that read the window's rows through
/// the index on their creation, never the events.
/// </summary>
public sealed partial class PostgresOrdoStore
{
    private const string InsertJobStatsSql = """
        INSERT INTO job_stats(job_id, tenant, workflow, version, created_at, ended_at, status, tokens, cost, retries, rejections, escalations)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
        """;

    // Written only when the figures or the status change: a commit that changes neither updates no row.
    private const string UpdateJobStatsSql = """
        UPDATE job_stats SET status = $2, ended_at = coalesce(ended_at, $3), tokens = tokens + $4, cost = cost + $5,
            retries = retries + $6, rejections = rejections + $7, escalations = escalations + $8
        WHERE job_id = $1 AND (status <> $2 OR $9)
        """;

    // One statement for every agent and prompt hash of a commit; the job's tenant, workflow and creation come from its row.
    private const string UpsertAgentStatsSql = """
        INSERT INTO agent_stats(job_id, agent, prompt_hash, tenant, workflow, version, created_at, calls, failures, tokens, cost)
        SELECT s.job_id, a.agent, a.prompt_hash, s.tenant, s.workflow, s.version, s.created_at, a.calls, a.failures, a.tokens, a.cost
        FROM job_stats s CROSS JOIN unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::numeric[]) AS a(agent, prompt_hash, calls, failures, tokens, cost)
        WHERE s.job_id = $1
        ON CONFLICT (job_id, agent, prompt_hash) DO UPDATE SET calls = agent_stats.calls + excluded.calls, failures = agent_stats.failures + excluded.failures,
            tokens = agent_stats.tokens + excluded.tokens, cost = agent_stats.cost + excluded.cost
        """;

    /// <summary>Adds a new job's summary row, with what its first events already count, and its agents' rows.</summary>
    private static void AddJobStats(NpgsqlBatch batch, NewJob job)
    {
        var delta = JobStatsDelta.Of(job.Events);
        long? ended = job.Status.IsTerminal() && job.Events.Count > 0 ? Ms(job.Events[^1].Timestamp) : null;
        batch.BatchCommands.Add(Sql.Command(InsertJobStatsSql,
            Sql.Text(job.JobId.Value), Sql.Text(job.Tenant), Sql.Text(job.Workflow), Sql.Int(job.Version), Sql.Long(Ms(job.CreatedAt)), Sql.Long(ended),
            Sql.Text(job.Status.ToWire()), Sql.Long(delta.Tokens), Sql.Numeric(delta.Cost), Sql.Long(delta.Retries), Sql.Long(delta.Rejections), Sql.Long(delta.Escalations)));
        AddAgentStats(batch, job.JobId, delta);
    }

    /// <summary>Adds what a commit's events change to the job's summary row and to its agents' rows.</summary>
    private static void AddCommitStats(NpgsqlBatch batch, JobId jobId, IReadOnlyList<EventEnvelope> events, JobStatus status, JobStatsDelta delta)
    {
        long? ended = status.IsTerminal() && events.Count > 0 ? Ms(events[^1].Timestamp) : null;
        batch.BatchCommands.Add(Sql.Command(UpdateJobStatsSql,
            Sql.Text(jobId.Value), Sql.Text(status.ToWire()), Sql.Long(ended), Sql.Long(delta.Tokens), Sql.Numeric(delta.Cost), Sql.Long(delta.Retries),
            Sql.Long(delta.Rejections), Sql.Long(delta.Escalations), Sql.Bool(!delta.IsEmpty)));
        AddAgentStats(batch, jobId, delta);
    }

    private static void AddAgentStats(NpgsqlBatch batch, JobId jobId, JobStatsDelta delta)
    {
        if (delta.Agents.Count == 0) return;
        var rows = delta.Agents.ToList();
        batch.BatchCommands.Add(Sql.Command(UpsertAgentStatsSql,
            Sql.Text(jobId.Value),
            Sql.TextArray([.. rows.Select(r => r.Key.Agent)]),
            Sql.TextArray([.. rows.Select(r => r.Key.PromptHash)]),
            Sql.LongArray([.. rows.Select(r => (long)r.Value.Calls)]),
            Sql.LongArray([.. rows.Select(r => (long)r.Value.Failures)]),
            Sql.LongArray([.. rows.Select(r => r.Value.Tokens)]),
            Sql.NumericArray([.. rows.Select(r => r.Value.Cost)])));
    }

    /// <inheritdoc />
    /// <remarks>
    /// One round trip: the job rows of the window grouped per workflow version (with each ended job's latency) and the
    /// agent rows grouped per agent and prompt hash. Each filter the query has is a condition of its own in the
    /// statement, so that the planner picks the index on the tenant or the workflow for one of them, and on the creation
    /// otherwise.
    /// </remarks>
    public async ValueTask<StatsData> ReadStatsAsync(StatsQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        return await ReadAsync(async c =>
        {
            await using var batch = new NpgsqlBatch(c);
            batch.BatchCommands.Add(StatsCommand(VersionTotalsSql, query));
            batch.BatchCommands.Add(StatsCommand(AgentTotalsSql, query, agents: true));
            var versions = new List<VersionTotals>();
            var agents = new List<AgentTotals>();
            await using var r = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var latencies = r.IsDBNull(11) ? [] : r.GetFieldValue<long[]>(11);
                versions.Add(new VersionTotals(r.GetString(0), r.GetInt32(1), (int)r.GetInt64(2), (int)r.GetInt64(3), (int)r.GetInt64(4), (int)r.GetInt64(5),
                    (long)r.GetDecimal(6), Money(r.GetDecimal(7)), (long)r.GetDecimal(8), (int)r.GetInt64(9), (int)r.GetInt64(10), [.. latencies.Select(l => (double)l)]));
            }

            await r.NextResultAsync(cancellationToken).ConfigureAwait(false);
            while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                agents.Add(new AgentTotals(r.GetString(0), r.GetInt32(1), r.GetString(2), r.GetString(3),
                    (long)r.GetDecimal(4), (long)r.GetDecimal(5), (long)r.GetDecimal(6), Money(r.GetDecimal(7))));
            }

            return new StatsData(versions, agents);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The figures per workflow version of the rows that match <c>{0}</c>, with each ended job's latency.</summary>
    internal const string VersionTotalsSql = """
        SELECT workflow, version, count(*),
               count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE status = 'cancelled'),
               sum(tokens), sum(cost), sum(retries), count(*) FILTER (WHERE rejections > 0), count(*) FILTER (WHERE escalations > 0),
               array_agg(ended_at - created_at) FILTER (WHERE ended_at IS NOT NULL)
        FROM job_stats WHERE {0} GROUP BY workflow, version ORDER BY workflow, version
        """;

    /// <summary>The figures per workflow version, agent and prompt hash of the rows that match <c>{0}</c>.</summary>
    internal const string AgentTotalsSql = """
        SELECT workflow, version, agent, prompt_hash, sum(calls), sum(failures), sum(tokens), sum(cost)
        FROM agent_stats WHERE {0} GROUP BY workflow, version, agent, prompt_hash ORDER BY workflow, version, agent, prompt_hash
        """;

    /// <summary>
    /// A statement over the rows of the query's window: <c>{0}</c> in <paramref name="sql"/> is its condition. With
    /// <see cref="StatsQuery.EndedOnly"/>, a job row must have ended, and an agent row (<paramref name="agents"/>) belong to
    /// a job row that has.
    /// </summary>
    internal static NpgsqlBatchCommand StatsCommand(string sql, StatsQuery query, bool agents = false)
    {
        var where = new StringBuilder("created_at >= $1");
        var parameters = new List<NpgsqlParameter> { Sql.Long(Ms(query.Since)) };
        if (query.Tenant is { } tenant)
        {
            parameters.Add(Sql.Text(tenant));
            where.Append(System.Globalization.CultureInfo.InvariantCulture, $" AND tenant = ${parameters.Count}");
        }

        if (query.Workflow is { } workflow)
        {
            parameters.Add(Sql.Text(workflow));
            where.Append(System.Globalization.CultureInfo.InvariantCulture, $" AND workflow = ${parameters.Count}");
        }

        if (query.Version is { } version)
        {
            parameters.Add(Sql.Int(version));
            where.Append(System.Globalization.CultureInfo.InvariantCulture, $" AND version = ${parameters.Count}");
        }

        if (query.EndedOnly)
        {
            const string Ended = "status IN ('completed', 'failed', 'cancelled')";
            var window = where.ToString();
            where.Append(agents ? " AND job_id IN (SELECT job_id FROM job_stats WHERE " + window + " AND " + Ended + ")" : " AND " + Ended);
        }

        return Sql.Command(sql.Replace("{0}", where.ToString(), StringComparison.Ordinal), [.. parameters]);
    }

    /// <summary>
    /// A sum of costs to the precision prices have (10 decimal places), as the SQLite store gives it: without the trailing
    /// zeros a <c>numeric</c> keeps (<c>0.0240</c> is <c>0.024</c>), so that both stores print the same figure.
    /// </summary>
    private static decimal Money(decimal value) => Math.Round(value, 10) / 1.000000000000000000000000000000000m;
}
