using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.Extensions.AI;
using Ordo.Expressions;

namespace Ordo.Agents.Models;

/// <summary>
/// A chat client that answers from a fixtures file: the first response whose <c>agent</c>, <c>attempt</c> and
/// <c>when</c> match is returned, with its usage. For offline runs, demos and tests; it can also simulate
/// provider faults (<c>timeout</c>, <c>rate_limited</c>, <c>server_error</c>, <c>malformed</c>).
/// </summary>
/// <remarks>Reads <see cref="ModelCallProperties"/> from <see cref="ChatOptions.AdditionalProperties"/> to know who is asking.</remarks>
public sealed class ScriptedChatClient(ScriptedFixtures fixtures, ExpressionEvaluator evaluator) : IChatClient
{
    /// <inheritdoc />
    public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var props = options?.AdditionalProperties;
        var agent = props?.TryGetValue(ModelCallProperties.Agent, out var a) == true ? a as string : null;
        var attempt = props?.TryGetValue(ModelCallProperties.Attempt, out var at) == true && at is int n ? n : 1;
        var input = props?.TryGetValue(ModelCallProperties.Input, out var i) == true && i is JsonElement e ? e : (JsonElement?)null;
        if (agent is null)
        {
            throw new ModelCallException("config_error", "the scripted provider needs to know which agent is asking", retryable: false);
        }

        // A tool-using agent's conversation carries its rounds: each earlier answer that asked for tools is one.
        var history = messages as IReadOnlyList<ChatMessage> ?? messages.ToList();
        var round = 1 + history.Count(m => m.Role == ChatRole.Assistant && m.Contents.OfType<FunctionCallContent>().Any());
        var scope = new ExpressionScope { Input = input, Attempt = attempt }
            .With("round", JsonSerializer.SerializeToElement(round))
            .With("tool_results", ToolResults(history));
        foreach (var r in fixtures.Responses)
        {
            if (r.Agent != agent || (r.Attempt is { } want && want != attempt) || (r.Round is { } wantRound && wantRound != round))
            {
                continue;
            }

            if (r.When is not null)
            {
                bool matches;
                try
                {
                    matches = evaluator.EvaluateBoolean(r.When, scope);
                }
                catch (ExpressionEvaluationException ex)
                {
                    throw new ModelCallException("config_error", $"{r.Location}: {ex.Message}", retryable: false, ex);
                }

                if (!matches) continue;
            }

            return Task.FromResult(Respond(r, agent, attempt, round));
        }

        throw new ModelCallException("no_fixture", $"no scripted response in {fixtures.File} matches agent '{agent}' (attempt {attempt}, round {round}); add one with 'agent: {agent}'", retryable: false);
    }

    /// <summary>The tool calls made so far in the conversation, as <c>[{ tool, args, result }]</c>.</summary>
    private static JsonElement ToolResults(IReadOnlyList<ChatMessage> history)
    {
        var calls = history.SelectMany(m => m.Contents.OfType<FunctionCallContent>()).ToList();
        var results = history.SelectMany(m => m.Contents.OfType<FunctionResultContent>()).ToDictionary(r => r.CallId, r => r.Result, StringComparer.Ordinal);
        var list = new System.Text.Json.Nodes.JsonArray();
        foreach (var call in calls)
        {
            var tool = call.AdditionalProperties?.TryGetValue(ModelCallProperties.Tool, out var t) == true && t is string name ? name : call.Name;
            list.Add(new System.Text.Json.Nodes.JsonObject
            {
                ["tool"] = tool,
                ["args"] = JsonSerializer.SerializeToNode(call.Arguments ?? new Dictionary<string, object?>(), AIJsonUtilities.DefaultOptions),
                ["result"] = results.TryGetValue(call.CallId, out var result) ? JsonSerializer.SerializeToNode(result, AIJsonUtilities.DefaultOptions) : null,
            });
        }

        return JsonSerializer.SerializeToElement(list);
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var response = await GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
        foreach (var update in response.ToChatResponseUpdates())
        {
            yield return update;
        }
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null) => serviceType?.IsInstanceOfType(this) == true ? this : null;

    /// <inheritdoc />
    public void Dispose()
    {
    }

    private static ChatResponse Respond(ScriptedResponse r, string agent, int attempt, int round) => r.Error switch
    {
        _ when r.ToolCalls is { } calls => Calls(calls, r, attempt, round),
        "timeout" => throw new ModelCallException("timeout", $"scripted timeout for agent '{agent}' ({r.Location})", retryable: true),
        "rate_limited" => throw new ModelCallException("rate_limited", $"scripted rate limit for agent '{agent}' ({r.Location})", retryable: true),
        "server_error" => throw new ModelCallException("server_error", $"scripted server error for agent '{agent}' ({r.Location})", retryable: true),
        "malformed" => Message("{\"this is not\": valid json", r),
        _ => Message(r.Content ?? "", r),
    };

    private static ChatResponse Calls(IReadOnlyList<ScriptedToolCall> calls, ScriptedResponse r, int attempt, int round)
    {
        // Scripted calls name tools as tools.yaml does; the runner maps them like a provider's function names.
        var contents = calls.Select((c, i) => (AIContent)new FunctionCallContent(
            $"scripted-{attempt}-{round}-{i + 1}", c.Tool,
            JsonSerializer.Deserialize<Dictionary<string, object?>>(c.Args.GetRawText(), AIJsonUtilities.DefaultOptions))).ToList();
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, contents))
        {
            ModelId = "scripted",
            FinishReason = ChatFinishReason.ToolCalls,
            Usage = new UsageDetails { InputTokenCount = r.InputTokens, OutputTokenCount = r.OutputTokens, TotalTokenCount = r.InputTokens + r.OutputTokens },
        };
    }

    private static ChatResponse Message(string content, ScriptedResponse r) => new(new ChatMessage(ChatRole.Assistant, content))
    {
        ModelId = "scripted",
        Usage = new UsageDetails { InputTokenCount = r.InputTokens, OutputTokenCount = r.OutputTokens, TotalTokenCount = r.InputTokens + r.OutputTokens },
    };
}

/// <summary>Keys Ordo puts in <see cref="ChatOptions.AdditionalProperties"/> so that middleware and the scripted provider know the caller.</summary>
public static class ModelCallProperties
{
    /// <summary>The agent name (string).</summary>
    public const string Agent = "ordo.agent";
    /// <summary>The attempt (int).</summary>
    public const string Attempt = "ordo.attempt";
    /// <summary>The agent's input (<see cref="JsonElement"/>).</summary>
    public const string Input = "ordo.input";
    /// <summary>The job id (string).</summary>
    public const string Job = "ordo.job";
    /// <summary>The round of a tool-using agent's step (int, 1 for its first model call).</summary>
    public const string Round = "ordo.round";
    /// <summary>On a <see cref="FunctionCallContent"/>: the tool's own name (tools.yaml), when the function name differs.</summary>
    public const string Tool = "ordo.tool";
    /// <summary>The call's id in the job's log (string, <c>ModelCallRequested.call_id</c>): what a replay finds the recorded answer by.</summary>
    public const string CallId = "ordo.call_id";
    /// <summary>The <c>sha256:</c> of the request (string, <c>ModelCallRequested.request_hash</c>).</summary>
    public const string RequestHash = "ordo.request_hash";
    /// <summary>The faults of the job's project to inject (<see cref="Faults.FaultSettings"/>), when it has any.</summary>
    public const string Faults = "ordo.faults";
}

/// <summary>A model call failed.</summary>
public sealed class ModelCallException : OrdoException
{
    /// <summary>Creates the error.</summary>
    public ModelCallException(string error, string message, bool retryable, Exception? inner = null) : base(message, inner)
    {
        Error = error;
        Retryable = retryable;
    }

    /// <summary>A short kind: one of <see cref="ModelErrors"/>, or <c>no_fixture</c> for the scripted provider.</summary>
    public string Error { get; }
    /// <summary>Whether another attempt could succeed.</summary>
    public bool Retryable { get; }
    /// <summary>How long the provider asked to wait before the next call (its <c>Retry-After</c>), if it said.</summary>
    public TimeSpan? RetryAfter { get; init; }
}
