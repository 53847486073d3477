using System.Text.Json;
using Microsoft.Extensions.AI;
using Ordo.Engine;
using Ordo.Events;

namespace Ordo.Agents.ToolUse;

/// <summary>
/// What an attempt of an agent step already did in earlier deliveries — the model's recorded answers and the recorded
/// outcomes of the tool calls they asked for — so that a step run again after a crash, a lost lease or a pause for an
/// approval replays them instead of asking the model again (which may ask for other calls) and repeating side effects.
/// </summary>
internal sealed class StepJournal
{
    private readonly Dictionary<string, string?> _requestHashes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ModelCallSucceededPayload> _answers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _toolOf = new(StringComparer.Ordinal);
    private readonly Dictionary<string, JsonElement> _results = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ToolCallFailedPayload> _failures = new(StringComparer.Ordinal);

    /// <summary>Nothing done before.</summary>
    public static StepJournal Empty { get; } = new();

    /// <summary>Whether anything was done before.</summary>
    public bool IsEmpty => _answers.Count == 0 && _results.Count == 0 && _failures.Count == 0;

    /// <summary>Reads the step attempt's earlier events from the job's log.</summary>
    public static async ValueTask<StepJournal> LoadAsync(StepExecution execution, CancellationToken cancellationToken)
    {
        var events = await execution.EarlierEventsAsync(cancellationToken).ConfigureAwait(false);
        if (events.Count == 0) return Empty;
        var journal = new StepJournal();
        foreach (var e in events)
        {
            switch (e.Type)
            {
                case EventTypes.ModelCallRequested:
                    var requested = e.GetPayload<ModelCallRequestedPayload>();
                    journal._requestHashes[requested.CallId] = requested.RequestHash;
                    break;
                case EventTypes.ModelCallSucceeded:
                    var answer = e.GetPayload<ModelCallSucceededPayload>();
                    journal._answers[answer.CallId] = answer;
                    break;
                case EventTypes.ToolCallRequested:
                    var call = e.GetPayload<ToolCallRequestedPayload>();
                    journal._toolOf[call.CallId] = call.Tool;
                    break;
                case EventTypes.ToolCallSucceeded:
                    var ok = e.GetPayload<ToolCallSucceededPayload>();
                    if (ok.Result is { } result && ok.Skipped != true) journal._results[ok.CallId] = result;
                    journal._toolOf.TryAdd(ok.CallId, ok.Tool);
                    break;
                case EventTypes.ToolCallFailed:
                    var failed = e.GetPayload<ToolCallFailedPayload>();
                    journal._failures[failed.CallId] = failed;
                    journal._toolOf.TryAdd(failed.CallId, failed.Tool);
                    break;
            }
        }

        return journal;
    }

    /// <summary>What a recorded answer said, as the provider gave it: its text and the tool calls it asked for.</summary>
    internal static List<AIContent> Contents(ModelCallSucceededPayload answer)
    {
        var contents = new List<AIContent>();
        if (!string.IsNullOrEmpty(answer.Content)) contents.Add(new TextContent(answer.Content));
        foreach (var call in answer.ToolCalls ?? [])
        {
            var args = call.Args.ValueKind == JsonValueKind.Object
                ? JsonSerializer.Deserialize(call.Args.GetRawText(), AIJsonUtilities.DefaultOptions.GetTypeInfo(typeof(Dictionary<string, object?>))) as Dictionary<string, object?>
                : null;
            contents.Add(new FunctionCallContent(call.Id, call.Function, args)
            {
                Exception = call.ArgsError is { } error ? new JsonException(error) : null,
            });
        }

        return contents;
    }

    /// <summary>The recorded answer of a model call made with the same request, if any.</summary>
    public ChatResponse? Answer(string callId, string requestHash)
    {
        if (!_answers.TryGetValue(callId, out var answer) || !_requestHashes.TryGetValue(callId, out var hash) || hash != requestHash) return null;
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, Contents(answer))) { ModelId = answer.Model };
    }

    /// <summary>
    /// What the model was told for the call with this id, when it was the same tool: its result, or the refusal or
    /// failure (except those that stopped the step — an approval it needed, a budget — which are asked again).
    /// </summary>
    public bool TryOutcome(string callId, string tool, out JsonElement result, out ToolCallFailedPayload? failure)
    {
        result = default;
        failure = null;
        if (!_toolOf.TryGetValue(callId, out var recordedTool) || recordedTool != tool) return false;
        if (_results.TryGetValue(callId, out result)) return true;
        if (_failures.TryGetValue(callId, out var failed) && failed.Error is not ("approval_required" or "budget_exceeded" or "approval_denied"))
        {
            failure = failed;
            return true;
        }

        return false;
    }
}
