namespace Ordo.Gateway.Pipeline;

/// <summary>
/// <c>rate_limit.per_tenant_per_minute</c>: the call waits in line for a permit of its (tool, tenant) window; when the
/// line is full it is refused as <c>rate_limited</c> (retryable).
/// </summary>
internal sealed class RateLimitHandler(ToolRateLimits limits) : IToolCallHandler
{
    /// <inheritdoc />
    public async ValueTask<ToolCallResult> HandleAsync(ToolCallContext context, ToolCallDelegate next, CancellationToken cancellationToken)
    {
        var tool = context.Tool ?? throw new InvalidOperationException("the rate limit is taken after the tool is found");
        var tenant = context.Scope.Tenant;
        if (tool.RateLimit?.PerTenantPerMinute is { } perMinute && !await limits.AcquireAsync(tool.Name, tenant, perMinute, cancellationToken).ConfigureAwait(false))
        {
            throw context.Refuse("rate_limited", $"tool '{context.ToolName}' is over its rate limit of {perMinute} calls per minute for tenant '{tenant}'", retryable: true);
        }

        return await next(context, cancellationToken).ConfigureAwait(false);
    }
}
