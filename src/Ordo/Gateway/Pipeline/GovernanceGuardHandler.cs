using Ordo.Engine;

namespace Ordo.Gateway.Pipeline;

/// <summary>
/// The job's governance before a call: kill switches, budgets, <c>rate_limit.per_job</c> and <c>on: tool_call</c>
/// policies, as the <see cref="IToolCallGuard"/> decides (it records its own decisions and refusals).
/// </summary>
internal sealed class GovernanceGuardHandler(IToolCallGuard guard) : IToolCallHandler
{
    /// <inheritdoc />
    public async ValueTask<ToolCallResult> HandleAsync(ToolCallContext context, ToolCallDelegate next, CancellationToken cancellationToken)
    {
        var tool = context.Tool ?? throw new InvalidOperationException("the guard runs after the tool is found");
        await guard.CheckAsync(context.Scope, context.Agent, tool, context.Args, context.CallId, context.CallIndex, cancellationToken).ConfigureAwait(false);
        return await next(context, cancellationToken).ConfigureAwait(false);
    }
}
