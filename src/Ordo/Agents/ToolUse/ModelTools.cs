using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.AI;
using Ordo.Agents.Models;
using Ordo.Configuration;
using Ordo.Engine;
using Ordo.Events;
using Ordo.Gateway;
using Ordo.Tools;
using Ordo.Tools.Mcp;
using Ordo.Workflows;

namespace Ordo.Agents.ToolUse;

/// <summary>The tools an agent offers its model: function declarations, and the tool each function name stands for.</summary>
/// <param name="Declarations">What the model is told, one function per tool.</param>
/// <param name="ToolsByFunction">The tool (tools.yaml name) of each function name.</param>
internal sealed record OfferedTools(IReadOnlyList<AIFunctionDeclaration> Declarations, IReadOnlyDictionary<string, string> ToolsByFunction)
{
    /// <summary>No tools.</summary>
    public static OfferedTools None { get; } = new([], new Dictionary<string, string>());
}

/// <summary>
/// Tools offered to models and the calls models ask for. A model never reaches a tool: each call it asks for runs through
/// the <see cref="ToolGateway"/> like any other (allowlist, arguments, policy, kill switch, budget, rate limit,
/// idempotency key, secrets, events), and what the gateway answers — the result or the refusal — goes back to the model.
/// </summary>
internal static partial class ModelTools
{
    /// <summary>The most calls one model answer may ask for; those after it are refused (and told) without running.</summary>
    public const int MaxCallsPerRound = 32;

    /// <summary>The most characters of a function name providers accept.</summary>
    private const int MaxFunctionName = 64;

    /// <summary>
    /// The agent's tools as functions: each named as providers accept (<c>[A-Za-z0-9_-]</c>, at most 64 characters:
    /// <c>tickets.lookup</c> becomes <c>tickets_lookup</c>, a clash gets a suffix), described by the tool's
    /// <c>description</c> and its <c>args</c> schema (an object with any properties when it has none).
    /// </summary>
    /// <remarks>
    /// An <c>mcp</c> tool without <c>args</c> is described by its server (<see cref="IMcpToolCatalog"/>): the server's
    /// description and input schema. A server that cannot be reached leaves the generic description; the call itself
    /// then fails through the gateway, and the model is told.
    /// </remarks>
    public static async ValueTask<OfferedTools> OfferAsync(ProjectDefinition project, AgentDefinition agent, IMcpToolCatalog? mcp, CancellationToken cancellationToken)
    {
        if (agent.Tools.Count == 0) return OfferedTools.None;
        var declarations = new List<AIFunctionDeclaration>();
        var byFunction = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var toolName in agent.Tools.Distinct(StringComparer.Ordinal))
        {
            project.Tools.TryGetValue(toolName, out var tool);
            var function = FunctionName(toolName, byFunction);
            byFunction[function] = toolName;
            var schema = tool?.Args is { } args ? JsonElementFactory.Parse(args.Json) : (JsonElement?)null;
            var description = tool?.Description;
            if (tool is { Kind: "mcp", Server: { } server, McpTool: { } remote } && mcp is not null && (schema is null || description is null))
            {
                try
                {
                    var listed = (await mcp.ListToolsAsync(project, server, cancellationToken).ConfigureAwait(false)).FirstOrDefault(t => t.Name == remote);
                    schema ??= listed?.InputSchema;
                    description ??= listed?.Description;
                }
                catch (ToolExecutionException)
                {
                    // Offered without the server's description; calling it fails through the gateway, and the model is told.
                }
            }

            schema ??= JsonElementFactory.Parse("""{"type":"object"}""");
            description ??= $"The tool '{toolName}'" + (tool is null ? "" : $" ({tool.Kind}, effect {tool.EffectName})") + ".";
            declarations.Add(AIFunctionFactory.CreateDeclaration(function, description, schema.Value));
        }

        return new OfferedTools(declarations, byFunction);
    }

    /// <summary>
    /// Runs one call a model asked for through the gateway. Returns what the model is told: the tool's result, or
    /// <c>{ "error", "message" }</c> when the call was refused or failed; or, when the call stopped the step (an approval
    /// it needs, a budget it would break, a kill switch on the job), that interruption instead.
    /// </summary>
    public static async ValueTask<(object? Result, StepInterrupt? Interrupt)> RunAsync(
        ToolGateway gateway, StepExecution execution, AgentDefinition agent, OfferedTools offered, FunctionCallContent call, int indexInRound, CancellationToken cancellationToken)
    {
        var toolName = ToolOf(call, offered);
        if (call.Exception is not null)
        {
            return (Refusal("invalid_args", $"the arguments of the call of '{call.Name}' are not a JSON object: {call.Exception.Message}"), null);
        }

        if (indexInRound >= MaxCallsPerRound)
        {
            return (Refusal("too_many_calls", $"one answer may ask for at most {MaxCallsPerRound} tool calls; this one was not run"), null);
        }

        var args = JsonSerializer.SerializeToElement(call.Arguments ?? new Dictionary<string, object?>(), AIJsonUtilities.DefaultOptions.GetTypeInfo(typeof(IDictionary<string, object?>)));
        var scope = new ModelToolScope(execution);
        try
        {
            var result = await gateway.CallAsync(scope, agent, toolName, args, cancellationToken).ConfigureAwait(false);
            return (result.Value, null);
        }
        catch (ToolCallException e)
        {
            if (scope.Interrupted is { } interrupt && interrupt.By != "kill_switch")
            {
                execution.Interrupt(interrupt);
                return (null, interrupt);
            }

            // A refusal (policy, allowlist, kill switch on the tool, arguments) or a failure: the model is told and goes on.
            return (Refusal(e.Error, e.Message), null);
        }
    }

    /// <summary>The tool a function call names: by the offered function name, else by the tool's own name.</summary>
    public static string ToolOf(FunctionCallContent call, OfferedTools offered)
        => offered.ToolsByFunction.TryGetValue(call.Name, out var tool) ? tool : call.Name;

    /// <summary>How a call is kept in <see cref="ModelCallSucceededPayload.ToolCalls"/>.</summary>
    public static ModelToolCall Describe(FunctionCallContent call, SecretRedactor redactor, OfferedTools offered)
    {
        var args = call.Arguments is null
            ? JsonElementFactory.EmptyObject
            : JsonSerializer.SerializeToElement(call.Arguments, AIJsonUtilities.DefaultOptions.GetTypeInfo(typeof(IDictionary<string, object?>)));
        return new ModelToolCall(call.CallId, call.Name, ToolOf(call, offered), redactor.Redact(args));
    }

    private static JsonElement Refusal(string error, string message)
        => JsonSerializer.SerializeToElement(new Dictionary<string, string> { ["error"] = error, ["message"] = message }, AIJsonUtilities.DefaultOptions.GetTypeInfo(typeof(Dictionary<string, string>)));

    private static string FunctionName(string tool, Dictionary<string, string> taken)
    {
        var name = InvalidFunctionChars().Replace(tool, "_");
        if (name.Length > MaxFunctionName) name = name[..MaxFunctionName];
        var candidate = name;
        for (var n = 2; taken.ContainsKey(candidate); n++)
        {
            var suffix = $"_{n}";
            candidate = (name.Length + suffix.Length > MaxFunctionName ? name[..(MaxFunctionName - suffix.Length)] : name) + suffix;
        }

        return candidate;
    }

    [GeneratedRegex("[^A-Za-z0-9_-]")]
    private static partial Regex InvalidFunctionChars();
}
