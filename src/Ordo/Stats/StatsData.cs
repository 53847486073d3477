namespace Ordo.Stats;

/// <summary>Which jobs <see cref="Storage.IStatsStore.ReadStatsAsync"/> sums up.</summary>
public sealed record StatsQuery
{
    /// <summary>Jobs created at or after this instant.</summary>
    public required DateTimeOffset Since { get; init; }

    /// <summary>Only this tenant's jobs; null for every tenant.</summary>
    public string? Tenant { get; init; }

    /// <summary>Only jobs of the workflow with this name; null for every workflow.</summary>
    public string? Workflow { get; init; }

    /// <summary>Only this version of <see cref="Workflow"/>; null for every version.</summary>
    public int? Version { get; init; }

    /// <summary>
    /// Only the jobs that have ended (completed, failed or cancelled), and their agents: the figures a canary is judged on,
    /// where a job still queued or running would count as a job without its cost, its rejections or its outcome.
    /// Default: false, every job of the window.
    /// </summary>
    public bool EndedOnly { get; init; }
}

/// <summary>The sums of the jobs of one workflow version, as a store keeps them.</summary>
/// <param name="Workflow">The workflow name.</param>
/// <param name="Version">Its version.</param>
/// <param name="Jobs">Jobs created in the window.</param>
/// <param name="Completed">Of those, completed.</param>
/// <param name="Failed">Failed.</param>
/// <param name="Cancelled">Cancelled.</param>
/// <param name="Tokens">Tokens of their model calls.</param>
/// <param name="Cost">Cost of their model calls, in USD.</param>
/// <param name="Retries">Step attempts retried.</param>
/// <param name="JobsWithRejections">Jobs with at least one rejected artifact.</param>
/// <param name="JobsWithEscalations">Jobs with at least one escalation.</param>
/// <param name="LatenciesMs">For each job that ended: the time from its submission to its end, in milliseconds.</param>
public sealed record VersionTotals(string Workflow, int Version, int Jobs, int Completed, int Failed, int Cancelled, long Tokens, decimal Cost,
    long Retries, int JobsWithRejections, int JobsWithEscalations, IReadOnlyList<double> LatenciesMs);

/// <summary>The sums of one agent and prompt hash within one workflow version.</summary>
/// <param name="Workflow">The workflow name.</param>
/// <param name="Version">Its version.</param>
/// <param name="Agent">The agent as <c>name@version</c>.</param>
/// <param name="PromptHash">The prompt's hash (empty when the agent has none).</param>
/// <param name="Calls">Step attempts of the agent that ended.</param>
/// <param name="Failures">Those that failed.</param>
/// <param name="Tokens">Tokens of its model calls.</param>
/// <param name="Cost">Cost of its model calls, in USD.</param>
public sealed record AgentTotals(string Workflow, int Version, string Agent, string PromptHash, long Calls, long Failures, long Tokens, decimal Cost);

/// <summary>What a store sums up for <c>ordo stats</c>.</summary>
/// <param name="Versions">Per workflow version.</param>
/// <param name="Agents">Per workflow version, agent and prompt hash.</param>
public sealed record StatsData(IReadOnlyList<VersionTotals> Versions, IReadOnlyList<AgentTotals> Agents);
