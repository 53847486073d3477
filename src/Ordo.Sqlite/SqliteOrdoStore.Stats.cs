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
        const string Ended = "status IN ('completed', 'failed', 'cancelled')";

        // One pass over the window's job rows (the figures and the latencies together), summed here: cheaper than a
        // GROUP BY and a second scan for the latencies.
        var sums = new Dictionary<(string Workflow, int Version), VersionSums>();
        using (var cmd = Command(c, $"SELECT workflow, version, status, tokens, cost, retries, rejections, escalations, ended_at - created_at FROM job_stats WHERE {Where}{(query.EndedOnly ? $" AND {Ended}" : "")}", query))
        using (var r = cmd.ExecuteReader())
        {
            string? lastWorkflow = null;
            while (r.Read())
            {
                // Workflow names repeat: keep one string per name rather than one per row.
                var workflow = r.GetString(0);
                if (workflow == lastWorkflow) workflow = lastWorkflow;
                lastWorkflow = workflow;
                var k = (workflow, r.GetInt32(1));
                if (!sums.TryGetValue(k, out var v)) sums[k] = v = new VersionSums();
                v.Jobs++;
                switch (r.GetString(2))
                {
                    case "completed": v.Completed++; break;
                    case "failed": v.Failed++; break;
                    case "cancelled": v.Cancelled++; break;
                }

                v.Tokens += r.GetInt64(3);
                v.Cost += r.GetDouble(4);
                v.Retries += r.GetInt64(5);
                if (r.GetInt64(6) > 0) v.Rejected++;
                if (r.GetInt64(7) > 0) v.Escalated++;
                if (!r.IsDBNull(8)) v.Latencies.Add(r.GetInt64(8));
            }
        }

        var agents = new List<AgentTotals>();
        using (var cmd = Command(c, $"""
            SELECT workflow, version, agent, prompt_hash, sum(calls), sum(failures), sum(tokens), sum(cost)
            FROM agent_stats WHERE {Where}{(query.EndedOnly ? $" AND job_key IN (SELECT job_key FROM job_stats WHERE {Where} AND {Ended})" : "")}
            GROUP BY workflow, version, agent, prompt_hash
            """, query))
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read())
            {
                agents.Add(new AgentTotals(r.GetString(0), r.GetInt32(1), r.GetString(2), r.GetString(3), r.GetInt64(4), r.GetInt64(5), r.GetInt64(6), Money(r.GetDouble(7))));
            }
        }

        return new StatsData(
            [.. sums.Select(kv => new VersionTotals(kv.Key.Workflow, kv.Key.Version, kv.Value.Jobs, kv.Value.Completed, kv.Value.Failed, kv.Value.Cancelled,
                kv.Value.Tokens, Money(kv.Value.Cost), kv.Value.Retries, kv.Value.Rejected, kv.Value.Escalated, kv.Value.Latencies))],
            agents);
    }

    private sealed class VersionSums
    {
        public int Jobs;
        public int Completed;
        public int Failed;
        public int Cancelled;
        public long Tokens;
        public double Cost;
        public long Retries;
        public int Rejected;
        public int Escalated;
        public List<double> Latencies { get; } = [];
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
