using System.Text.Json;
using Ordo.Events;
using Ordo.Gateway;
using Ordo.Workflows;

namespace Ordo.Agents;

/// <summary>An agent written in C#: registered in the host (<c>AddCodeAgent</c>) or loaded from a plugin assembly.</summary>
/// <remarks>Agents are stateless: everything they need arrives in the <see cref="AgentContext"/>; side effects go through <see cref="AgentContext.Tools"/>.</remarks>
public interface ICodeAgent
{
    /// <summary>Runs the agent on one input and returns its output (a JSON object).</summary>
    ValueTask<JsonElement> InvokeAsync(AgentContext context, CancellationToken cancellationToken);
}

/// <summary>What an agent sees when it runs.</summary>
public sealed class AgentContext
{
    /// <summary>The job.</summary>
    public required JobId JobId { get; init; }
    /// <summary>The tenant of the job.</summary>
    public required string Tenant { get; init; }
    /// <summary>The step, visit and attempt.</summary>
    public required StepRef Step { get; init; }
    /// <summary>The agent's definition.</summary>
    public required AgentDefinition Agent { get; init; }
    /// <summary>The input.</summary>
    public required JsonElement Input { get; init; }
    /// <summary>Requests tool calls; the gateway decides and runs them.</summary>
    public required IToolInvoker Tools { get; init; }
    /// <summary>Variations requested for this attempt by <c>retry.vary</c> (<c>require_citations</c>, …).</summary>
    public IReadOnlyList<string> Variations { get; init; } = [];
}

/// <summary>Requests tool calls from inside an agent or step. Implemented by the tool gateway.</summary>
public interface IToolInvoker
{
    /// <summary>Requests a tool call; returns its result, or throws <see cref="ToolCallException"/> when it failed or was refused.</summary>
    ValueTask<ToolCallResult> CallAsync(string tool, JsonElement args, CancellationToken cancellationToken = default);
}
