using System.Collections.Immutable;
using System.Text.Json;
using System.Text.Json.Nodes;
using Ordo.Engine;
using Ordo.Steps;
using Ordo.State;

namespace Ordo.Patterns;

/// <summary>
/// What the multi-phase steps (plan, supervise, board, auction) share: each execution does ONE unit — a plan, a
/// decision, a worker's result, a bid, a firing — and commits it as a <c>PatternProgressed</c> event before the next
/// unit starts, so a crash at any point re-runs at most the unit in flight, never a finished one.
/// </summary>
internal static class MultiPhase
{
    /// <summary>The units this step visit recorded so far.</summary>
    public static ImmutableList<ProgressUnit> Units(StepExecution execution)
        => execution.State.Patterns.TryGetValue(execution.Step.WorkKey, out var p) ? p.Progress : [];

    /// <summary>Runs an agent of the workflow; a missing agent is a configuration error.</summary>
    public static async ValueTask<StepOutcome> InvokeAsync(AgentInvoker agents, StepExecution execution, string name, JsonElement input, CancellationToken cancellationToken)
    {
        if (!execution.Workflow.Agents.TryGetValue(name, out var agent))
        {
            return StepOutcome.Failure("config_error", $"agent '{name}' is not defined", retryable: false);
        }

        var outcome = await agents.InvokeAsync(execution, agent, input, execution.Variations, cancellationToken).ConfigureAwait(false);
        return outcome with { Agent = agent.Ref };
    }

    /// <summary>A unit recorded with the agent's stamps; the agent's output is offered as its artifact, verified like any agent output.</summary>
    public static StepOutcome Unit(StepExecution execution, string kind, string phase, JsonNode data, StepOutcome? agentOutcome = null, string? agentName = null)
    {
        List<ArtifactCandidate> artifacts = [];
        if (agentOutcome?.Output is { } output && agentName is not null && execution.Workflow.Agents.TryGetValue(agentName, out var agent) && agent.Output is { } artifact)
        {
            artifacts.Add(new ArtifactCandidate(artifact, output));
        }

        var outcome = StepOutcome.Progressed(new PatternUnit(kind, phase, JsonElementFactory.FromNode(data)), artifacts);
        return agentOutcome is null ? outcome : outcome with
        {
            Agent = agentOutcome.Agent, PromptHash = agentOutcome.PromptHash, Model = agentOutcome.Model, ToolCalls = agentOutcome.ToolCalls,
        };
    }

    /// <summary>
    /// Whether a recorded unit's artifact passed verification (units without an artifact count as verified). A <c>held</c>
    /// unit counts too: the step runs again only once the approval holding it was granted (a deny ends the job).
    /// </summary>
    public static bool Accepted(ProgressUnit unit) => Text(unit.Data, "verdict") is null or "verified" or "held";

    /// <summary>A mutable copy of a value.</summary>
    public static JsonNode? Node(JsonElement? value) => value is { } v ? JsonNode.Parse(v.GetRawText()) : null;

    /// <summary>A string property of an object, if present.</summary>
    public static string? Text(JsonElement value, string name)
        => value.ValueKind == JsonValueKind.Object && value.TryGetProperty(name, out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;

    /// <summary>An integer property of an object, if present.</summary>
    public static int? Int(JsonElement value, string name)
        => value.ValueKind == JsonValueKind.Object && value.TryGetProperty(name, out var p) && p.TryGetInt32(out var i) ? i : null;
}
