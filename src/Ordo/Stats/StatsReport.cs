namespace Ordo.Stats;

/// <summary>The figures of <c>ordo stats</c> and <c>GET /v1/stats</c>.</summary>
/// <param name="Since">The start of the window.</param>
/// <param name="Workflows">One entry per workflow version, by name then version.</param>
public sealed record StatsReport(DateTimeOffset Since, IReadOnlyList<WorkflowVersionStats> Workflows)
{
    /// <summary>Works the figures out of a store's sums.</summary>
    public static StatsReport From(DateTimeOffset since, StatsData data)
    {
        ArgumentNullException.ThrowIfNull(data);
        var agents = data.Agents.ToLookup(a => (a.Workflow, a.Version));
        return new StatsReport(since, [.. data.Versions
            .OrderBy(v => v.Workflow, StringComparer.Ordinal).ThenBy(v => v.Version)
            .Select(v => WorkflowVersionStats.From(v, agents[(v.Workflow, v.Version)]))]);
    }
}

/// <summary>The figures of one workflow version.</summary>
public sealed record WorkflowVersionStats
{
    /// <summary>The workflow name.</summary>
    public required string Workflow { get; init; }
    /// <summary>Its version.</summary>
    public required int Version { get; init; }
    /// <summary>Jobs created in the window.</summary>
    public required int Jobs { get; init; }
    /// <summary>Of those, completed.</summary>
    public required int Completed { get; init; }
    /// <summary>Failed.</summary>
    public required int Failed { get; init; }
    /// <summary>Cancelled.</summary>
    public required int Cancelled { get; init; }
    /// <summary>Completed over ended (completed, failed, cancelled); null when none ended.</summary>
    public double? SuccessRate { get; init; }
    /// <summary>The cost of all the version's jobs over the number completed; null when none completed.</summary>
    public decimal? CostPerSuccess { get; init; }
    /// <summary>Tokens of all its jobs.</summary>
    public required long Tokens { get; init; }
    /// <summary>Cost of all its jobs, in USD.</summary>
    public required decimal Cost { get; init; }
    /// <summary>Submission to end of the ended jobs, in ms: the median (nearest rank); null when none ended.</summary>
    public double? LatencyP50Ms { get; init; }
    /// <summary>The 95th percentile (nearest rank).</summary>
    public double? LatencyP95Ms { get; init; }
    /// <summary>Step attempts retried, per job.</summary>
    public required double RetriesPerJob { get; init; }
    /// <summary>Jobs with a rejected artifact (a contract, a gate, a verification rule), over jobs.</summary>
    public required double GateRejectionRate { get; init; }
    /// <summary>Jobs with an escalation to a human, over jobs.</summary>
    public required double EscalationRate { get; init; }
    /// <summary>Failed over ended; null when none ended.</summary>
    public double? FailureRate { get; init; }
    /// <summary>Per agent and prompt hash.</summary>
    public required IReadOnlyList<AgentTotals> Agents { get; init; }

    /// <summary>The figures of one version's sums.</summary>
    public static WorkflowVersionStats From(VersionTotals v, IEnumerable<AgentTotals> agents)
    {
        ArgumentNullException.ThrowIfNull(v);
        var ended = v.Completed + v.Failed + v.Cancelled;
        var latencies = v.LatenciesMs.Order().ToList();
        return new WorkflowVersionStats
        {
            Workflow = v.Workflow,
            Version = v.Version,
            Jobs = v.Jobs,
            Completed = v.Completed,
            Failed = v.Failed,
            Cancelled = v.Cancelled,
            SuccessRate = ended == 0 ? null : (double)v.Completed / ended,
            FailureRate = ended == 0 ? null : (double)v.Failed / ended,
            CostPerSuccess = v.Completed == 0 ? null : v.Cost / v.Completed,
            Tokens = v.Tokens,
            Cost = v.Cost,
            LatencyP50Ms = Percentile(latencies, 0.50),
            LatencyP95Ms = Percentile(latencies, 0.95),
            RetriesPerJob = v.Jobs == 0 ? 0 : (double)v.Retries / v.Jobs,
            GateRejectionRate = v.Jobs == 0 ? 0 : (double)v.JobsWithRejections / v.Jobs,
            EscalationRate = v.Jobs == 0 ? 0 : (double)v.JobsWithEscalations / v.Jobs,
            Agents = [.. agents.OrderBy(a => a.Agent, StringComparer.Ordinal).ThenBy(a => a.PromptHash, StringComparer.Ordinal)],
        };
    }

    /// <summary>The nearest-rank percentile of sorted values: the smallest value with at least that share of the values at or below it.</summary>
    public static double? Percentile(IReadOnlyList<double> sorted, double p)
    {
        ArgumentNullException.ThrowIfNull(sorted);
        if (sorted.Count == 0) return null;
        var rank = (int)Math.Ceiling(p * sorted.Count);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Count - 1)];
    }
}
