using Ordo.Events;
using Ordo.Tools;

namespace Ordo.Gateway.Pipeline;

/// <summary>
/// The response cache of <c>effect: read</c> tools with <c>cache:</c> (per process, per tenant): a hit is recorded as a
/// call (<c>ToolCallRequested</c>, then <c>ToolCallSucceeded</c> with <c>cached: true</c>) and does not reach the tool;
/// a result that passed every check is kept for the tool's cache duration (not in a dry run).
/// </summary>
internal sealed class ResponseCacheHandler(ToolResultCache cache, ToolCallIntent intent, TimeProvider time) : IToolCallHandler
{
    /// <inheritdoc />
    public async ValueTask<ToolCallResult> HandleAsync(ToolCallContext context, ToolCallDelegate next, CancellationToken cancellationToken)
    {
        var tool = context.Tool ?? throw new InvalidOperationException("the cache is read after the tool is found");
        var scope = context.Scope;
        if (tool.Effect != ToolEffect.Read || tool.Cache is not { } ttl)
        {
            return await next(context, cancellationToken).ConfigureAwait(false);
        }

        if (cache.TryGet(tool.Name, scope.Tenant, context.Args, out var cached))
        {
            await intent.RecordAsync(context, cancellationToken).ConfigureAwait(false);
            scope.Record(EventFactory.Step(EventTypes.ToolCallSucceeded, scope.Step, new ToolCallSucceededPayload(context.CallId, context.ToolName, cached, 0, Cached: true, scope.DryRun), time.GetUtcNow(), agent: context.Agent?.Ref));
            return new ToolCallResult(context.CallId, context.ToolName, cached, Cached: true);
        }

        var result = await next(context, cancellationToken).ConfigureAwait(false);
        if (!scope.DryRun && !result.Cached && !result.Skipped)
        {
            cache.Put(tool.Name, scope.Tenant, context.Args, result.Value, ttl);
        }

        return result;
    }
}
