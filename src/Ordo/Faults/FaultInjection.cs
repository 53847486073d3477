using Ordo.Gateway;
using Ordo.Tools;

namespace Ordo.Faults;

/// <summary>
/// Injects the tool faults of the job's project right before the executor runs the tool: inside the gateway's
/// recording, retries, timeout and circuit breaker, so an injected failure or delay takes the path a real one takes.
/// Each attempt of a call is decided on its own.
/// </summary>
internal static class FaultInjection
{
    public static ToolCallDelegate Wrap(ToolCallDelegate executor, TimeProvider time)
        => async (context, cancellationToken) =>
        {
            var faults = context.Scope.Project.Faults;
            if (faults.Tools.Count > 0 && faults.Tools.FirstOrDefault(t => t.Matches(context.ToolName)) is { } fault
                && FaultDecision.Hit(faults.Seed, context.Scope.JobId.Value, $"{context.CallId}#{context.Attempts}", fault.Rate))
            {
                if (fault.Latency is { } latency)
                {
                    // A config is refused past the bound; a fault built in code (or stored before the bound) is held to it.
                    await Task.Delay(latency > ToolFault.MaxLatency ? ToolFault.MaxLatency : latency, time, cancellationToken).ConfigureAwait(false);
                }

                if (fault.Error is { } error)
                {
                    throw new ToolExecutionException(error, $"tool '{context.ToolName}' failed: injected fault ({fault.Where})", retryable: true);
                }
            }

            return await executor(context, cancellationToken).ConfigureAwait(false);
        };
}
