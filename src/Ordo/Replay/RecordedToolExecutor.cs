using System.Text.Json;
using Ordo.Tools;

namespace Ordo.Replay;

/// <summary>
/// A tool executor of one kind that runs nothing: each call gets the result (or the failure) recorded for the call with
/// the same id in the job, when it is the same tool with the same arguments; anything else is a divergence, and the
/// call fails with <see cref="ReplayErrors"/>. The gateway's pipeline around it (authorization, policies, budgets,
/// dry run, recording, result schema) runs as it does live.
/// </summary>
internal sealed class RecordedToolExecutor(string kind, ReplaySource source) : IToolExecutor
{
    public string Kind { get; } = kind;

    public async ValueTask<JsonElement> ExecuteAsync(ToolInvocation invocation, CancellationToken cancellationToken)
    {
        var name = invocation.Tool.Name;
        var calls = await source.CallsOfAsync(invocation.JobId, cancellationToken).ConfigureAwait(false);
        var request = calls?.ToolRequest(invocation.CallId);
        if (calls is null || request is null)
        {
            source.Miss($"tool call {invocation.CallId} ({name}) of job {invocation.JobId}: not in the recording");
            throw new ToolExecutionException(ReplayErrors.Unrecorded, $"the recording holds no call {invocation.CallId} of tool '{name}' (a new step or call)", retryable: false);
        }

        if (request.Tool != name || !ReplaySource.SameJson(request.Args, invocation.Args))
        {
            source.Miss($"tool call {invocation.CallId} of job {invocation.JobId}: {name} {invocation.Args.GetRawText()}, recorded {request.Tool} {request.Args?.GetRawText()}");
            throw new ToolExecutionException(ReplayErrors.Diverged,
                $"call {invocation.CallId} is not the recorded one: {name} with {invocation.Args.GetRawText()}, recorded {request.Tool} with {request.Args?.GetRawText() ?? "null"}", retryable: false);
        }

        if (calls.ToolResult(invocation.CallId) is { Skipped: not true } result)
        {
            source.CountServed();
            return result.Result ?? JsonElementFactory.Null;
        }

        if (calls.ToolFailure(invocation.CallId) is { } failure)
        {
            source.CountServed();
            throw new ToolExecutionException(failure.Error, failure.Message, failure.Retryable);
        }

        source.Miss($"tool call {invocation.CallId} ({name}) of job {invocation.JobId}: requested, but no outcome was recorded");
        throw new ToolExecutionException(ReplayErrors.Unrecorded, $"the recording holds no outcome of call {invocation.CallId} of tool '{name}'", retryable: false);
    }
}
