namespace Ordo.Faults;

/// <summary>
/// Faults injected on purpose (<c>faults:</c> in a test config), so that a team can see what its workflow does when a
/// provider times out, rate-limits, fails or answers garbage, and when a tool fails or is slow. Whether a call gets a
/// fault is decided by a stable hash of the seed, the job and the call: the same run injects the same faults, and a
/// replay of it sees them again.
/// </summary>
/// <param name="Seed">Changes which calls get faults. Default: 0.</param>
/// <param name="Models">Faults of model calls, the first that matches a call applies.</param>
/// <param name="Tools">Faults of tool calls, the first that matches a call applies.</param>
public sealed record FaultSettings(int Seed, IReadOnlyList<ModelFault> Models, IReadOnlyList<ToolFault> Tools)
{
    /// <summary>No faults.</summary>
    public static FaultSettings None { get; } = new(0, [], []);

    /// <summary>Whether any fault is configured.</summary>
    public bool Any => Models.Count > 0 || Tools.Count > 0;
}

/// <summary>A fault of model calls: <c>{ tier, agent, error, rate, attempts }</c>.</summary>
/// <param name="Tier">Only calls to this tier; null for any.</param>
/// <param name="Agent">Only calls of this agent; null for any.</param>
/// <param name="Error"><c>timeout</c>, <c>rate_limited</c>, <c>server_error</c> or <c>malformed</c> (an answer that is not JSON).</param>
/// <param name="Rate">The share of matching calls that get it, in [0, 1]. Default: 1.</param>
/// <param name="Attempts">Only on these attempts of the step; null for every attempt.</param>
/// <param name="Where">Where it is written (<c>ordo.yaml:12:5</c>), named in the failure.</param>
public sealed record ModelFault(string? Tier, string? Agent, string Error, double Rate, IReadOnlyList<int>? Attempts, string Where)
{
    /// <summary>Where <see cref="Agent"/> is written, for a problem naming it (the agents are the workflows', see <see cref="Configuration.ProjectChecks"/>); null when not known.</summary>
    public Workflows.SourceLocation? AgentAt { get; init; }
}

/// <summary>A fault of tool calls: <c>{ tool, error, latency, rate }</c>.</summary>
/// <param name="Tool">The tool name, or a prefix ending in <c>*</c> (<c>crm.*</c>).</param>
/// <param name="Error">A failure kind the call fails with (retryable, like a tool's own failure), one of <see cref="Errors"/>; null for latency alone.</param>
/// <param name="Latency">A delay before the call runs, at most <see cref="MaxLatency"/>; null for none.</param>
/// <param name="Rate">The share of matching calls (each attempt decided on its own), in [0, 1]. Default: 1.</param>
/// <param name="Where">Where it is written, named in the failure.</param>
public sealed record ToolFault(string Tool, string? Error, TimeSpan? Latency, double Rate, string Where)
{
    /// <summary>The failure kinds a tool fault may fail a call with: those of the gateway's own failures that a fault can stand for.</summary>
    public static IReadOnlyList<string> Errors { get; } = ["tool_error", "timeout", "connection_error", "rate_limited", "server_error", "malformed_response"];

    /// <summary>The longest latency a fault may add to a call: 1 hour (a chaos test waits for it).</summary>
    public static TimeSpan MaxLatency { get; } = TimeSpan.FromHours(1);

    /// <summary>Whether the fault applies to a tool.</summary>
    public bool Matches(string tool) => Tool.EndsWith('*') ? tool.StartsWith(Tool[..^1], StringComparison.Ordinal) : tool == Tool;
}
