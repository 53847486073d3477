using System.Collections.Concurrent;
using System.Text.Json;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Timeout;
using Ordo.Tools;

namespace Ordo.Gateway;

/// <summary>
/// The resilience of tool calls, shared by every job of the process: per tool a Polly pipeline of retries
/// (exponential backoff with full jitter, only for retryable failures), a circuit breaker and a per-attempt timeout;
/// and per dependency (an HTTP host, a database, a code tool) a retry budget, so that retries stay a bounded fraction
/// of calls during an outage instead of multiplying the load.
/// </summary>
/// <remarks>Thread-safe.</remarks>
public sealed class ToolResilience(TimeProvider time, Random? random = null, RetryBudgetOptions? budget = null)
{
    private readonly ConcurrentDictionary<PipelineKey, ToolPipeline> _pipelines = new();
    private readonly ConcurrentDictionary<string, RetryBudget> _budgets = new(StringComparer.Ordinal);
    private readonly Random _random = random ?? Random.Shared;
    private readonly Lock _randomGate = new();
    private readonly RetryBudgetOptions _budgetOptions = budget ?? new RetryBudgetOptions();

    /// <summary>The pipeline of a tool (created on first use).</summary>
    public ToolPipeline For(ToolDefinition tool, ProjectDependency dependency)
    {
        ArgumentNullException.ThrowIfNull(tool);
        var key = new PipelineKey(tool.Name, tool.Retry, tool.CircuitBreaker, tool.Timeout);
        return _pipelines.GetOrAdd(key, _ => Build(tool, _budgets.GetOrAdd(dependency.Key, _ => new RetryBudget(_budgetOptions, time))));
    }

    /// <summary>The state of a tool's circuit, for events and diagnostics.</summary>
    public static string StateName(CircuitState state) => state switch
    {
        CircuitState.Closed => "closed",
        CircuitState.Open or CircuitState.Isolated => "open",
        _ => "half_open",
    };

    private ToolPipeline Build(ToolDefinition tool, RetryBudget budget)
    {
        var stateProvider = new CircuitBreakerStateProvider();
        var retry = tool.Retry;
        var builder = new ResiliencePipelineBuilder<JsonElement> { TimeProvider = time };
        if (retry.MaxAttempts > 1)
        {
            builder.AddRetry(new RetryStrategyOptions<JsonElement>
            {
                MaxRetryAttempts = retry.MaxAttempts - 1,
                ShouldHandle = args => ValueTask.FromResult(
                    args.AttemptNumber < retry.MaxAttempts - 1 && IsRetryable(args.Outcome.Exception) && budget.TryWithdraw()),
                DelayGenerator = args =>
                {
                    var ceiling = Math.Min(retry.MaxBackoff.TotalMilliseconds, retry.Backoff.TotalMilliseconds * Math.Pow(2, Math.Min(args.AttemptNumber, 30)));
                    double r;
                    lock (_randomGate) r = _random.NextDouble();
                    return ValueTask.FromResult<TimeSpan?>(TimeSpan.FromMilliseconds(ceiling * r));
                },
            });
        }

        builder.AddCircuitBreaker(new CircuitBreakerStrategyOptions<JsonElement>
        {
            FailureRatio = tool.CircuitBreaker.FailureRatio,
            MinimumThroughput = Math.Max(2, tool.CircuitBreaker.MinCalls),
            SamplingDuration = Max(tool.CircuitBreaker.SamplingDuration, MinimumBreakerWindow),
            BreakDuration = Max(tool.CircuitBreaker.Break, MinimumBreakerWindow),
            ShouldHandle = args => ValueTask.FromResult(IsFailure(args.Outcome.Exception)),
            StateProvider = stateProvider,
        });
        builder.AddTimeout(new TimeoutStrategyOptions { Timeout = tool.Timeout });
        return new ToolPipeline(builder.Build(), stateProvider, budget);
    }

    /// <summary>The shortest break and sampling window a circuit breaker accepts.</summary>
    public static readonly TimeSpan MinimumBreakerWindow = TimeSpan.FromMilliseconds(500);

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    /// <summary>Failures worth another try: the executor says so, or the attempt timed out.</summary>
    private static bool IsRetryable(Exception? e) => e is TimeoutRejectedException || (e is ToolExecutionException t && t.Retryable);

    /// <summary>Failures the circuit breaker counts: anything but a refusal of the arguments (which says nothing about the dependency).</summary>
    private static bool IsFailure(Exception? e) => e is TimeoutRejectedException || (e is ToolExecutionException t && t.Retryable);

    private sealed record PipelineKey(string Tool, ToolRetrySettings Retry, CircuitBreakerSettings Breaker, TimeSpan Timeout);
}

/// <summary>A tool's pipeline, its circuit state and the retry budget of its dependency.</summary>
/// <param name="Pipeline">Retry → circuit breaker → timeout.</param>
/// <param name="Circuit">Reads the circuit state.</param>
/// <param name="Budget">The retry budget of the dependency.</param>
public sealed record ToolPipeline(ResiliencePipeline<JsonElement> Pipeline, CircuitBreakerStateProvider Circuit, RetryBudget Budget);

/// <summary>What a tool depends on, for its retry budget: an HTTP origin, a database, or the tool itself.</summary>
/// <param name="Key">The dependency's identity.</param>
public sealed record ProjectDependency(string Key)
{
    /// <summary>The dependency of a tool in a project.</summary>
    public static ProjectDependency Of(ToolDefinition tool, Configuration.ProjectDefinition project)
    {
        ArgumentNullException.ThrowIfNull(tool);
        ArgumentNullException.ThrowIfNull(project);
        return tool.Kind switch
        {
            "http" when Uri.TryCreate(System.Text.RegularExpressions.Regex.Replace(tool.Url ?? "", @"\{[^}]*\}", "x"), UriKind.Absolute, out var uri) => new($"http:{uri.Scheme}://{uri.Authority}"),
            "sql" when tool.Connection is not null && project.Connections.TryGetValue(tool.Connection, out var c) => new($"sql:{c.Provider}:{c.Target}"),
            "mcp" => new($"mcp:{tool.Server}"),
            _ => new($"{tool.Kind}:{tool.Name}"),
        };
    }
}

/// <summary>Limits of a retry budget.</summary>
public sealed class RetryBudgetOptions
{
    /// <summary>Retries allowed per first attempt, on average. Default: 0.2 (retries stay under 20% of calls).</summary>
    public double Ratio { get; set; } = 0.2;

    /// <summary>Retries allowed in a burst when the dependency was quiet. Default: 5.</summary>
    public double Burst { get; set; } = 5;
}

/// <summary>
/// A token bucket per dependency: every call deposits <see cref="RetryBudgetOptions.Ratio"/> tokens (up to the burst),
/// every retry takes one. When the dependency is down, retries run out after the burst and the amplification of
/// load stays at about 1 + ratio requests per call.
/// </summary>
/// <remarks>Thread-safe.</remarks>
public sealed class RetryBudget(RetryBudgetOptions options, TimeProvider time)
{
    private readonly Lock _gate = new();
    private double _tokens = options.Burst;

    /// <summary>Records a first attempt.</summary>
    public void Deposit()
    {
        lock (_gate) _tokens = Math.Min(options.Burst, _tokens + options.Ratio);
    }

    /// <summary>Takes a token for a retry; false when the budget is spent.</summary>
    public bool TryWithdraw()
    {
        lock (_gate)
        {
            if (_tokens < 1) return false;
            _tokens -= 1;
            return true;
        }
    }

    /// <summary>Tokens left.</summary>
    public double Tokens
    {
        get
        {
            lock (_gate) return _tokens;
        }
    }

    internal TimeProvider Time => time;
}
