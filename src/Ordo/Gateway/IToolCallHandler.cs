namespace Ordo.Gateway;

/// <summary>
/// A step of the tool gateway's pipeline: it may look at a call, refuse it (throw what
/// <see cref="ToolCallContext.Refuse"/> returns), or pass it on to <c>next</c> and look at the result.
/// </summary>
/// <remarks>
/// Handlers a host adds run after the gateway's own checks (the tool exists and the agent may use it, the arguments
/// match the tool's schema, kill switches, budgets and policies) and before its rate limit, cache, recording and
/// resilience; see docs/governance.md. One instance serves every call of the process: implementations must be thread-safe.
/// </remarks>
public interface IToolCallHandler
{
    /// <summary>Handles a call, usually by calling <paramref name="next"/>.</summary>
    /// <exception cref="ToolCallException">The call was refused or failed.</exception>
    ValueTask<ToolCallResult> HandleAsync(ToolCallContext context, ToolCallDelegate next, CancellationToken cancellationToken);
}
