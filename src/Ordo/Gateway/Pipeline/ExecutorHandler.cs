using System.Text.Json;
using Ordo.Tools;

namespace Ordo.Gateway.Pipeline;

/// <summary>The end of the pipeline: one run of the tool by the executor of its kind, with the secrets only executors may resolve.</summary>
internal sealed class ExecutorHandler(SecretResolver secrets, TimeProvider time)
{
    /// <summary>How long a cancelled executor gets to stop before the call is reported over without it.</summary>
    internal static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(5);

    /// <summary>Runs the tool once (a <see cref="ToolCallDelegate"/>).</summary>
    public async ValueTask<ToolCallResult> ExecuteAsync(ToolCallContext context, CancellationToken cancellationToken)
    {
        var executor = context.Executor ?? throw new InvalidOperationException("the executor is found before a call runs");
        var scope = context.Scope;
        var invocation = new ToolInvocation
        {
            Tool = context.Tool!,
            Args = context.Args,
            IdempotencyKey = context.IdempotencyKey,
            JobId = scope.JobId,
            CallId = context.CallId,
            Tenant = scope.Tenant,
            Project = scope.Project,
            DryRun = scope.DryRun,
            Secrets = secrets,
        };
        var value = await CancelledAndAwaitedAsync(executor.ExecuteAsync(invocation, cancellationToken).AsTask(), cancellationToken).ConfigureAwait(false);
        return new ToolCallResult(context.CallId, context.ToolName, value, Cached: false);
    }

    /// <summary>
    /// Waits for an executor's call; when <paramref name="cancellationToken"/> fires (the tool's timeout, the step's),
    /// waits for the executor to stop as well (it was given the token), at most <see cref="StopGrace"/>, so that what a
    /// cancelled call still does happens before the call is reported failed, not after.
    /// </summary>
    private async Task<JsonElement> CancelledAndAwaitedAsync(Task<JsonElement> call, CancellationToken cancellationToken)
    {
        try
        {
            return await call.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            try
            {
                await call.WaitAsync(StopGrace, time, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Stopped (cancelled, failed), or still running past the grace: the call is over either way.
            }

            throw;
        }
    }
}
