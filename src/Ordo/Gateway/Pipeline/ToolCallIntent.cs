using Ordo.Engine;
using Ordo.Events;
using Ordo.Tools;

namespace Ordo.Gateway.Pipeline;

/// <summary>
/// Records a call's <c>ToolCallRequested</c>: through the guard (which counts it against the job's budgets in the same
/// write), or, without one, with the step for a read and before the effect for a side effect (so that after a crash
/// the log shows the call was attempted). Used by the cache (a hit is a call too) and the recording step.
/// </summary>
internal sealed class ToolCallIntent(TimeProvider time, IToolCallGuard? guard)
{
    /// <summary>Records the intent of <paramref name="context"/>'s call.</summary>
    /// <exception cref="ToolCallException">The guard found the job's count already spent.</exception>
    public async ValueTask RecordAsync(ToolCallContext context, CancellationToken cancellationToken)
    {
        var scope = context.Scope;
        var tool = context.Tool ?? throw new InvalidOperationException("a call's intent is recorded after the tool is found");
        var requested = EventFactory.Step(EventTypes.ToolCallRequested, scope.Step,
            new ToolCallRequestedPayload(context.CallId, context.ToolName, tool.Kind, tool.EffectName, context.IdempotencyKey, context.Args, scope.DryRun), time.GetUtcNow(), agent: context.Agent?.Ref);
        if (guard is not null)
        {
            await guard.RecordIntentAsync(scope, context.Agent, tool, requested, context.CallId, cancellationToken).ConfigureAwait(false);
        }
        else if (tool.Effect == ToolEffect.Read)
        {
            scope.Record(requested);
        }
        else
        {
            await scope.AppendNowAsync(requested, cancellationToken).ConfigureAwait(false);
        }
    }
}
