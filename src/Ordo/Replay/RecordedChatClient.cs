using System.Text.Json;
using Microsoft.Extensions.AI;
using Ordo.Agents.Models;

namespace Ordo.Replay;

/// <summary>
/// A model that answers from a recording: each call gets the answer (or the failure) recorded for the call with the
/// same id in the job, when the request is the same as the recorded one; anything else is a divergence, and the call
/// fails with <see cref="ReplayErrors"/>. No provider is called.
/// </summary>
internal sealed class RecordedChatClient(ReplaySource source) : IChatClient
{
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var properties = options?.AdditionalProperties;
        var job = properties?.TryGetValue(ModelCallProperties.Job, out var j) == true ? j as string : null;
        var callId = properties?.TryGetValue(ModelCallProperties.CallId, out var c) == true ? c as string : null;
        var hash = properties?.TryGetValue(ModelCallProperties.RequestHash, out var h) == true ? h as string : null;
        if (job is null || callId is null)
        {
            throw new ModelCallException(ModelErrors.ConfigError, "a replayed model call must name its job and call id", retryable: false);
        }

        var calls = await source.CallsOfAsync(new JobId(job), cancellationToken).ConfigureAwait(false);
        var request = calls?.ModelRequest(callId);
        if (calls is null || request is null)
        {
            source.Miss($"model call {callId} of job {job}: not in the recording");
            throw new ModelCallException(ReplayErrors.Unrecorded, $"the recording holds no model call {callId} (a new step, attempt or round)", retryable: false);
        }

        if (request.RequestHash is { } recorded && hash is not null && recorded != hash)
        {
            source.Miss($"model call {callId} of job {job}: request {hash}, recorded {recorded}");
            throw new ModelCallException(ReplayErrors.Diverged, $"the request of model call {callId} is not the recorded one (request {hash}, recorded {recorded})", retryable: false);
        }

        if (calls.ModelAnswer(callId) is { } answer)
        {
            source.CountServed();
            return Response(answer);
        }

        if (calls.ModelFailure(callId) is { } failure)
        {
            source.CountServed();
            throw new ModelCallException(failure.Error, failure.Message, calls.Retryable(callId, failure.Error))
            {
                RetryAfter = failure.RetryAfterMs is { } ms ? TimeSpan.FromMilliseconds(ms) : null,
            };
        }

        source.Miss($"model call {callId} of job {job}: requested, but no answer was recorded");
        throw new ModelCallException(ReplayErrors.Unrecorded, $"the recording holds no answer to model call {callId}", retryable: false);
    }

    /// <summary>The recorded answer as the provider gave it: its text, the tool calls it asked for, its usage and model.</summary>
    private static ChatResponse Response(Events.ModelCallSucceededPayload answer)
    {
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, Agents.ToolUse.StepJournal.Contents(answer)))
        {
            ModelId = answer.Model,
            Usage = new UsageDetails { InputTokenCount = answer.InputTokens, OutputTokenCount = answer.OutputTokens, TotalTokenCount = answer.InputTokens + answer.OutputTokens },
        };
    }

    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        => throw new NotSupportedException("a replay answers whole calls only; Ordo's agents make whole calls");

    public object? GetService(Type serviceType, object? serviceKey = null) => serviceKey is null && serviceType.IsInstanceOfType(this) ? this : null;

    public void Dispose()
    {
    }
}
