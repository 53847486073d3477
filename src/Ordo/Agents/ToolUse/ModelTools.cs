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

            schema ??= OpenSchema(tool);
            description ??= $"The tool '{toolName}'" + (tool is null ? "" : $" ({tool.Kind}, effect {tool.EffectName})") + ".";
            declarations.Add(AIFunctionFactory.CreateDeclaration(function, description, schema.Value));
        }

        return new OfferedTools(declarations, byFunction);
    }

    /// <summary>
    /// Runs one call a model asked for through the gateway — or, when an earlier delivery of the step already made it
    /// (<paramref name="journal"/>), gives back what it got then. Returns what the model is told: the tool's result, or
    /// <c>{ "error", "message" }</c> when the call was refused or failed; or, when the call stopped the step (an approval
    /// it needs, a budget it would break), that interruption instead. Every call takes a call index and is recorded,
    /// those refused before the gateway (arguments that are not JSON, one call too many) included.
    /// </summary>
    /// <remarks>
    /// The idempotency key of a call a model asks for is the job, the step visit, and what it asks (the tool and its
    /// arguments, canonical), with a count for the same call asked again in the step: a retried attempt that asks for
    /// the same call sends the same key, and one that asks for another call never reuses a key.
    /// </remarks>
    public static async ValueTask<(object? Result, StepInterrupt? Interrupt)> RunAsync(
        ToolGateway gateway, StepExecution execution, AgentDefinition agent, OfferedTools offered, FunctionCallContent call, int indexInRound,
        StepJournal journal, Dictionary<string, int> asked, TimeProvider time, CancellationToken cancellationToken)
    {
        var toolName = ToolOf(call, offered);

        // The key is what the call asks, counted in the step: replayed calls count too, so a call run again after a
        // crash gets the key it had, and the calls after it theirs.
        string? key = null;
        JsonElement args = default;
        if (call.Exception is null && indexInRound < MaxCallsPerRound)
        {
            args = JsonSerializer.SerializeToElement(call.Arguments ?? new Dictionary<string, object?>(), AIJsonUtilities.DefaultOptions.GetTypeInfo(typeof(IDictionary<string, object?>)));
            var what = toolName + "\n" + Canonical(args);
            var occurrence = asked.TryGetValue(what, out var n) ? n : 0;
            asked[what] = occurrence + 1;
            var digest = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(what)))[..16];
            key = $"{execution.JobId.Value}:{execution.Step.WorkKey}:t{digest}" + (occurrence == 0 ? "" : $".{occurrence}");
        }

        var callId = ToolGateway.CallId(execution.Step, execution.PeekCallIndex());
        if (journal.TryOutcome(callId, toolName, out var earlier, out var earlierFailure))
        {
            execution.NextCallIndex();
            return (earlierFailure is null ? earlier : Refusal(earlierFailure.Error, earlierFailure.Message), null);
        }

        if (key is null)
        {
            var (error, message) = call.Exception is not null
                ? ("invalid_args", $"the arguments of the call of '{call.Name}' are not a JSON object: {call.Exception.Message}")
                : ("too_many_calls", $"one answer may ask for at most {MaxCallsPerRound} tool calls; this one was not run");
            var refusedId = ToolGateway.CallId(execution.Step, execution.NextCallIndex());
            execution.Record(EventFactory.Step(EventTypes.ToolCallFailed, execution.Step, new ToolCallFailedPayload(refusedId, toolName, error, message, 0, false), time.GetUtcNow(), agent: agent.Ref));
            return (Refusal(error, message), null);
        }

        var scope = new ModelToolScope(execution);
        try
        {
            var result = await gateway.CallAsync(scope, agent, toolName, args, key, cancellationToken).ConfigureAwait(false);
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

    /// <summary>A JSON value with its object properties in ordinal order: the same call asked twice reads the same.</summary>
    private static string Canonical(JsonElement value)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            Write(w, value);
        }

        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);

        static void Write(Utf8JsonWriter w, JsonElement v)
        {
            switch (v.ValueKind)
            {
                case JsonValueKind.Object:
                    w.WriteStartObject();
                    foreach (var p in v.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal))
                    {
                        w.WritePropertyName(p.Name);
                        Write(w, p.Value);
                    }

                    w.WriteEndObject();
                    break;
                case JsonValueKind.Array:
                    w.WriteStartArray();
                    foreach (var item in v.EnumerateArray()) Write(w, item);
                    w.WriteEndArray();
                    break;
                default:
                    v.WriteTo(w);
                    break;
            }
        }
    }

    /// <summary>
    /// The schema offered for a tool without <c>args</c>: any object (<c>additionalProperties: true</c>, said outright:
    /// some providers' clients read a bare object schema as one without properties), naming what the tool is known to
    /// read — a sql tool's <c>@name</c> parameters, an http tool's URL placeholders.
    /// </summary>
    private static JsonElement OpenSchema(Tools.ToolDefinition? tool)
    {
        var names = tool switch
        {
            { Kind: "sql", Query: { } query } => SqlParameter().Matches(query).Select(m => m.Groups[1].Value)
                .Where(n => n is not ("idempotency_key" or "job_id" or "tenant")),
            { Kind: "http", Url: { } url } => UrlPlaceholder().Matches(url).Select(m => m.Groups[1].Value),
            _ => [],
        };
        var properties = new System.Text.Json.Nodes.JsonObject();
        foreach (var name in names.Distinct(StringComparer.Ordinal)) properties[name] = new System.Text.Json.Nodes.JsonObject();
        var schema = new System.Text.Json.Nodes.JsonObject { ["type"] = "object", ["properties"] = properties, ["additionalProperties"] = true };
        return JsonElementFactory.FromNode(schema);
    }

    [GeneratedRegex(@"@([A-Za-z_][A-Za-z0-9_]*)")]
    private static partial Regex SqlParameter();

    [GeneratedRegex(@"\{([A-Za-z_][A-Za-z0-9_]*)\}")]
    private static partial Regex UrlPlaceholder();

    /// <summary>The tool a function call names: by the offered function name, else by the tool's own name.</summary>
    public static string ToolOf(FunctionCallContent call, OfferedTools offered)
        => offered.ToolsByFunction.TryGetValue(call.Name, out var tool) ? tool : call.Name;

    /// <summary>How a call is kept in <see cref="ModelCallSucceededPayload.ToolCalls"/>.</summary>
    public static ModelToolCall Describe(FunctionCallContent call, SecretRedactor redactor, OfferedTools offered)
    {
        var args = call.Arguments is null
            ? JsonElementFactory.EmptyObject
            : JsonSerializer.SerializeToElement(call.Arguments, AIJsonUtilities.DefaultOptions.GetTypeInfo(typeof(IDictionary<string, object?>)));
        return new ModelToolCall(call.CallId, call.Name, ToolOf(call, offered), redactor.Redact(args))
        {
            ArgsError = call.Exception is { } e ? redactor.Redact(e.Message) : null,
        };
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
