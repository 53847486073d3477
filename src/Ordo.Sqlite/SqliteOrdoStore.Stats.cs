using Microsoft.Data.Sqlite;
using Ordo.Events;
using Ordo.State;
using Ordo.Stats;
using Ordo.Storage;

namespace Ordo.Sqlite;

/// <summary>The summary rows of <c>ordo stats</c>: kept in each commit's transaction, summed with indexed queries.</summary>
public sealed partial class SqliteOrdoStore
{
    /// <summary>Adds what a commit's events change to the job's summary row and its agents' rows (nothing when they change nothing).</summary>
    private void KeepStats(long key, IReadOnlyList<EventEnvelope> events, JobStatus status, bool statusChanged)
    {
        var delta = JobStatsDelta.Of(events);
        if (delta.IsEmpty && !statusChanged) return;
        var s = Sql;
        object? ended = status.IsTerminal() && events.Count > 0 ? Ms(events[^1].Timestamp) : null;
        s.UpdateJobStats.Set(key, status.ToWire(), ended, delta.Tokens, (double)delta.Cost, delta.Retries, delta.Rejections, delta.Escalations).ExecuteNonQuery();
        foreach (var ((agent, promptHash), a) in delta.Agents)
        {
            s.UpsertAgentStats.Set(key, agent, promptHash, a.Calls, a.Failures, a.Tokens, (double)a.Cost).ExecuteNonQuery();
        }
    }

    /// <inheritdoc />
    public async ValueTask<StatsData> ReadStatsAsync(StatsQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        using var c = OpenReader();
        const string Where = "created_at >= $since AND ($tenant IS NULL OR tenant = $tenant) AND ($workflow IS NULL OR workflow = $workflow) AND ($version IS NULL OR version = $version)";

        var versions = new List<(string Workflow, int Version, int Jobs, int Completed, int Failed, int Cancelled, long Tokens, decimal Cost, long Retries, int Rejected, int Escalated)>();
        using (var cmd = Command(c, $"""
            SELECT workflow, version, count(*), sum(status = 'completed'), sum(status = 'failed'), sum(status = 'cancelled'),
                   sum(tokens), sum(cost), sum(retries), sum(rejections > 0), sum(escalations > 0)
            FROM job_stats WHERE {Where} GROUP BY workflow, version
            """, query))
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read())
            {
                versions.Add((r.GetString(0), r.GetInt32(1), r.GetInt32(2), r.GetInt32(3), r.GetInt32(4), r.GetInt32(5), r.GetInt64(6), (decimal)r.GetDouble(7), r.GetInt64(8), r.GetInt32(9), r.GetInt32(10)));
            }
        }

        var latencies = new Dictionary<(string, int), List<double>>();
        using (var cmd = Command(c, $"SELECT workflow, version, ended_at - created_at FROM job_stats WHERE {Where} AND ended_at IS NOT NULL", query))
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read())
            {
                var k = (r.GetString(0), r.GetInt32(1));
                if (!latencies.TryGetValue(k, out var list)) latencies[k] = list = [];
                list.Add(r.GetInt64(2));
            }
        }

        var agents = new List<AgentTotals>();
        using (var cmd = Command(c, $"""
            SELECT workflow, version, agent, prompt_hash, sum(calls), sum(failures), sum(tokens), sum(cost)
            FROM agent_stats WHERE {Where} GROUP BY workflow, version, agent, prompt_hash
            """, query))
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read())
            {
                agents.Add(new AgentTotals(r.GetString(0), r.GetInt32(1), r.GetString(2), r.GetString(3), r.GetInt64(4), r.GetInt64(5), r.GetInt64(6), Money(r.GetDouble(7))));
            }
        }

        return new StatsData(
            [.. versions.Select(v => new VersionTotals(v.Workflow, v.Version, v.Jobs, v.Completed, v.Failed, v.Cancelled, v.Tokens, Money((double)v.Cost), v.Retries, v.Rejected, v.Escalated,
                latencies.TryGetValue((v.Workflow, v.Version), out var l) ? l : []))],
            agents);
    }

    /// <summary>A sum of costs kept as REAL, to the precision prices have (10 decimal places): no float noise in the figures.</summary>
    private static decimal Money(double value) => Math.Round((decimal)value, 10);

    private static SqliteCommand Command(SqliteConnection c, string sql, StatsQuery query)
    {
        var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.Parameters.AddWithValue("$since", Ms(query.Since));
        cmd.Parameters.AddWithValue("$tenant", (object?)query.Tenant ?? DBNull.Value);
        cmd.Parameters.AddWithValue("$workflow", (object?)query.Workflow ?? DBNull.Value);
        cmd.Parameters.AddWithValue("$version", (object?)query.Version ?? DBNull.Value);
        return cmd;
    }
}
