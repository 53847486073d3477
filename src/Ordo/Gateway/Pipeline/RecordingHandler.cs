using Ordo.Events;
using Ordo.Tools;

namespace Ordo.Gateway.Pipeline;

/// <summary>
/// Records the call: its intent (<c>ToolCallRequested</c>, committed before the call for a side effect) with its
/// idempotency key, then <c>ToolCallSucceeded</c> (with the attempts and the duration) or <c>ToolCallFailed</c> (the
/// failure's message redacted) for whatever the steps inside it report. In a dry run a side effect stops here: it is
/// recorded as succeeded and skipped, and never reaches the tool.
/// </summary>
internal sealed class RecordingHandler(ToolCallIntent intent, SecretRedactor redactor, TimeProvider time) : IToolCallHandler
{
    /// <inheritdoc />
    public async ValueTask<ToolCallResult> HandleAsync(ToolCallContext context, ToolCallDelegate next, CancellationToken cancellationToken)
    {
        var tool = context.Tool ?? throw new InvalidOperationException("a call is recorded after the tool is found");
        var scope = context.Scope;
        var callId = context.CallId;
        var toolName = context.ToolName;
        var agent = context.Agent?.Ref;
        await intent.RecordAsync(context, cancellationToken).ConfigureAwait(false);

        var started = time.GetTimestamp();
        if (scope.DryRun && tool.Effect != ToolEffect.Read)
        {
            // Recorded, not executed: nothing reaches the tool, so there is no real result to check against its schema.
            var skipped = JsonElementFactory.Parse("""{"dry_run":true}""");
            scope.Record(EventFactory.Step(EventTypes.ToolCallSucceeded, scope.Step, new ToolCallSucceededPayload(callId, toolName, skipped, 0, false, true)
            {
                Skipped = true,
                ResultSchema = tool.Result is null ? null : "not_checked",
            }, time.GetUtcNow(), agent: agent));
            return new ToolCallResult(callId, toolName, skipped, Cached: false, Skipped: true);
        }

        ToolCallResult result;
        try
        {
            result = await next(context, cancellationToken).ConfigureAwait(false);
        }
        catch (ToolExecutionException e)
        {
            var ms = time.GetElapsedTime(started).TotalMilliseconds;
            var message = redactor.Redact(e.Message);
            scope.Record(EventFactory.Step(EventTypes.ToolCallFailed, scope.Step, new ToolCallFailedPayload(callId, toolName, e.Error, message, ms, e.Retryable) { Attempts = context.Attempts }, time.GetUtcNow(), agent: agent));
            throw new ToolCallException(callId, toolName, e.Error, message, e.Retryable);
        }

        var elapsed = time.GetElapsedTime(started).TotalMilliseconds;
        var attempts = context.Attempts;
        scope.Record(EventFactory.Step(EventTypes.ToolCallSucceeded, scope.Step, new ToolCallSucceededPayload(callId, toolName, result.Value, elapsed, false, scope.DryRun) { Attempts = attempts == 0 ? null : attempts }, time.GetUtcNow(), agent: agent));
        return new ToolCallResult(callId, toolName, result.Value, Cached: false);
    }
}
