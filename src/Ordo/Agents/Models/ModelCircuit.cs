using Microsoft.Extensions.AI;
using Polly;
using Polly.CircuitBreaker;
using Ordo.Tools;

namespace Ordo.Agents.Models;

/// <summary>
/// The circuit breaker of a model tier, shared by every job of the process that uses the same tier definition: a Polly
/// circuit breaker that counts the failures saying the provider is unwell (<see cref="ModelErrors.CountsAgainstProvider"/>)
/// and, once open, fails calls at once as <see cref="ModelErrors.CircuitOpen"/> until its break is over.
/// </summary>
/// <remarks>Thread-safe.</remarks>
public sealed class ModelCircuit
{
    private readonly CircuitBreakerStateProvider _state = new();
    private readonly ResiliencePipeline _pipeline;
    private readonly TimeProvider _time;
    private long _openUntilTicks;

    /// <summary>Creates the breaker of a tier.</summary>
    public ModelCircuit(CircuitBreakerSettings settings, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(settings);
        _time = time ?? throw new ArgumentNullException(nameof(time));
        _pipeline = new ResiliencePipelineBuilder { TimeProvider = time }
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions
            {
                FailureRatio = settings.FailureRatio,
                MinimumThroughput = Math.Max(2, settings.MinCalls),
                SamplingDuration = Max(settings.SamplingDuration, Gateway.ToolResilience.MinimumBreakerWindow),
                BreakDuration = Max(settings.Break, Gateway.ToolResilience.MinimumBreakerWindow),
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is ModelCallException m && ModelErrors.CountsAgainstProvider(m.Error)),
                StateProvider = _state,
                OnOpened = args =>
                {
                    Interlocked.Exchange(ref _openUntilTicks, (_time.GetUtcNow() + args.BreakDuration).UtcTicks);
                    return ValueTask.CompletedTask;
                },
            })
            .Build();
    }

    /// <summary>The state: <c>closed</c>, <c>open</c> or <c>half_open</c>.</summary>
    public string State => Gateway.ToolResilience.StateName(_state.CircuitState);

    /// <summary>
    /// Whether a call now would be refused: the circuit is open and its break is not over. Once the break is over the next
    /// call goes through as the trial that closes the circuit again (or opens it for another break).
    /// </summary>
    public bool IsOpen => _state.CircuitState is CircuitState.Open or CircuitState.Isolated
        && _time.GetUtcNow().UtcTicks < Interlocked.Read(ref _openUntilTicks);

    /// <summary>Runs a call through the breaker.</summary>
    /// <exception cref="ModelCallException">The call failed, or the circuit is open (<see cref="ModelErrors.CircuitOpen"/>).</exception>
    internal async Task<ChatResponse> ExecuteAsync(Func<CancellationToken, Task<ChatResponse>> call, string tier, CancellationToken cancellationToken)
    {
        try
        {
            return await _pipeline.ExecuteAsync(static async (call, ct) => await call(ct).ConfigureAwait(false), call, cancellationToken).ConfigureAwait(false);
        }
        catch (BrokenCircuitException e)
        {
            var left = e.RetryAfter is { } r ? $"; it may close in {Durations.Readable(r)}" : "";
            throw new ModelCallException(ModelErrors.CircuitOpen, $"the circuit of tier '{tier}' is open after repeated provider failures: the call was not sent{left}", retryable: true, e);
        }
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;
}
