using System.Text.Json;
using Ordo.Events;
using Ordo.Tools;
using Polly.CircuitBreaker;
using Polly.Timeout;

namespace Ordo.Gateway.Pipeline;

/// <summary>
/// Runs the rest of the call through the tool's resilience pipeline (retries of retryable failures within the retry
/// budget of its dependency, circuit breaker, per-attempt timeout), counts the attempts, turns an open circuit and a
/// timeout into failures of the call (<c>circuit_open</c>, <c>timeout</c>, both retryable by the step), and records
/// each change of the circuit's state (<c>CircuitStateChanged</c>) in the job whose call saw it.
/// </summary>
internal sealed class ResilienceHandler(ToolResilience resilience, TimeProvider time) : IToolCallHandler
{
    /// <inheritdoc />
    public async ValueTask<ToolCallResult> HandleAsync(ToolCallContext context, ToolCallDelegate next, CancellationToken cancellationToken)
    {
        var tool = context.Tool ?? throw new InvalidOperationException("a call is run after the tool is found");
        var toolName = context.ToolName;
        ToolPipeline? pipeline = null;
        var circuitBefore = CircuitState.Closed;
        JsonElement value;
        try
        {
            pipeline = resilience.For(tool, ProjectDependency.Of(tool, context.Scope.Project));
            circuitBefore = pipeline.Circuit.CircuitState;
            pipeline.Budget.Deposit();
            try
            {
                value = await pipeline.Pipeline.ExecuteAsync(
                    async ct =>
                    {
                        context.AddAttempt();
                        return (await next(context, ct).ConfigureAwait(false)).Value;
                    },
                    cancellationToken).ConfigureAwait(false);
            }
            catch (BrokenCircuitException e)
            {
                throw new ToolExecutionException("circuit_open", $"the circuit of tool '{toolName}' is open after repeated failures; calls are refused until it closes{(e.RetryAfter is { } r ? $" (it may close in {Durations.Readable(r)})" : "")}", retryable: true, e);
            }
            catch (TimeoutRejectedException e)
            {
                throw new ToolExecutionException("timeout", $"tool '{toolName}' gave no answer within its timeout of {Durations.Format(tool.Timeout)}", retryable: true, e);
            }
            catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                throw new ToolExecutionException("timeout", $"tool '{toolName}' gave no answer within its timeout of {Durations.Format(tool.Timeout)}", retryable: true, e);
            }
        }
        catch (ToolExecutionException)
        {
            RecordCircuit(context, pipeline, circuitBefore);
            throw;
        }

        RecordCircuit(context, pipeline, circuitBefore);
        return new ToolCallResult(context.CallId, toolName, value, Cached: false);
    }

    private void RecordCircuit(ToolCallContext context, ToolPipeline? pipeline, CircuitState before)
    {
        if (pipeline is null) return;
        var after = pipeline.Circuit.CircuitState;
        if (ToolResilience.StateName(after) == ToolResilience.StateName(before)) return;
        context.Scope.Record(EventFactory.Step(EventTypes.CircuitStateChanged, context.Scope.Step,
            new CircuitStateChangedPayload(context.ToolName, ToolResilience.StateName(before), ToolResilience.StateName(after), context.CallId), time.GetUtcNow()));
    }
}
