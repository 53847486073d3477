using System.Text.Json;
using Ordo.Events;
using Ordo.Gateway.Pipeline;
using Ordo.Telemetry;
using Ordo.Tools;
using Ordo.Workflows;

namespace Ordo.Gateway;

/// <summary>
/// The one path from agents and steps to side effects. Every call goes through one pipeline of small steps, in this
/// order: authorize (the tool exists, the agent and the tenant may use it) → validate the arguments (secrets redacted,
/// the tool's schema) → governance (kill switches, budgets, policies) → the executor of its kind → handlers the host
/// added → rate limit → response cache (read tools) → record (intent before the call, then its outcome; a side effect
/// stops here in a dry run) → result schema → result redaction → result size limit → resilience (retries, circuit
/// breaker, timeout) → the executor. Results come back through the same steps in reverse.
/// </summary>
/// <remarks>Thread-safe.</remarks>
public sealed class ToolGateway : IDisposable
{
    private readonly TimeProvider _time;
    private readonly SecretResolver _secrets;
    private readonly SecretRedactor _redactor;
    private readonly ToolResilience _resilience;
    private readonly ToolRateLimits _rateLimits = new();
    private readonly ToolCallDelegate _pipeline;

    /// <summary>Creates a gateway over executors (one per tool kind).</summary>
    /// <param name="executors">The executors, one per tool kind.</param>
    /// <param name="timeProvider">The clock (default: the system's).</param>
    /// <param name="guard">Kill switches, budgets and policies; null checks none of them.</param>
    /// <param name="secrets">Where secrets are read (default: the environment and <c>ORDO_SECRETS_FILE</c>).</param>
    /// <param name="resilience">Retries, circuit breakers and timeouts of tools (default: one of this gateway's own).</param>
    /// <param name="handlers">Handlers of the host, run in order after the gateway's own checks and before its rate limit (see <see cref="IToolCallHandler"/>).</param>
    public ToolGateway(IEnumerable<IToolExecutor> executors, TimeProvider? timeProvider = null, Engine.IToolCallGuard? guard = null, SecretResolver? secrets = null, ToolResilience? resilience = null, IEnumerable<IToolCallHandler>? handlers = null)
    {
        ArgumentNullException.ThrowIfNull(executors);
        var byKind = executors.ToDictionary(e => e.Kind, StringComparer.Ordinal);
        _time = timeProvider ?? TimeProvider.System;
        _secrets = secrets ?? new SecretResolver();
        _redactor = new SecretRedactor(_secrets);
        _resilience = resilience ?? new ToolResilience(_time);
        var intent = new ToolCallIntent(_time, guard);
        var builder = new ToolCallPipelineBuilder()
            .Use(new AuthorizationHandler())
            .Use(new ArgumentValidationHandler(_redactor));
        if (guard is not null) builder.Use(new GovernanceGuardHandler(guard));
        _pipeline = builder
            .Use(new ExecutorRoutingHandler(byKind))
            .Use(handlers ?? [])
            .Use(new RateLimitHandler(_rateLimits))
            .Use(new ResponseCacheHandler(new ToolResultCache(_time), intent, _time))
            .Use(new RecordingHandler(intent, _redactor, _time))
            .Use(new ResultSchemaHandler())
            .Use(new ResultRedactionHandler(_redactor))
            .Use(new ResultSizeLimitHandler())
            .Use(new ResilienceHandler(_resilience, _time))
            .Build(Faults.FaultInjection.Wrap(new ExecutorHandler(_secrets, _time).ExecuteAsync, _time));
    }

    /// <inheritdoc />
    public void Dispose() => _rateLimits.Dispose();

    /// <summary>The resilience pipelines (per tool) and retry budgets (per dependency).</summary>
    public ToolResilience Resilience => _resilience;

    /// <summary>Where the gateway reads secrets (it alone resolves them).</summary>
    public SecretResolver Secrets => _secrets;

    /// <summary>Removes secret values from text that leaves the gateway.</summary>
    public SecretRedactor Redactor => _redactor;

    /// <summary>The idempotency key of a call: job, step visit (with its scope) and call index.</summary>
    public static string IdempotencyKey(JobId job, StepRef step, int callIndex) => $"{job.Value}:{step.WorkKey}:{callIndex}";

    /// <summary>The id of a call in the job's log.</summary>
    public static string CallId(StepRef step, int callIndex) => $"{step.WorkKey}.{step.Attempt}.{callIndex}";

    /// <summary>Runs a tool call for a step (and, if <paramref name="agent"/> is set, on behalf of that agent).</summary>
    /// <exception cref="ToolCallException">The call was refused or failed.</exception>
    public ValueTask<ToolCallResult> CallAsync(IToolCallScope scope, AgentDefinition? agent, string toolName, JsonElement args, CancellationToken cancellationToken)
        => CallAsync(scope, agent, toolName, args, idempotencyKey: null, cancellationToken);

    /// <summary>Runs a tool call with an idempotency key of the caller's (a call a model asked for: keyed by what it asks).</summary>
    internal async ValueTask<ToolCallResult> CallAsync(IToolCallScope scope, AgentDefinition? agent, string toolName, JsonElement args, string? idempotencyKey, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(scope);
        var context = new ToolCallContext(scope, agent, toolName, args, scope.NextCallIndex(), _time, idempotencyKey);
        if (!OrdoSpans.Listening && !OrdoMetrics.ToolDuration.Enabled)
        {
            return await _pipeline(context, cancellationToken).ConfigureAwait(false);
        }

        // The call's span holds its events (requested, succeeded or failed): they carry its span id.
        using var span = OrdoSpans.StartTool(toolName, context.CallId);
        var started = _time.GetTimestamp();
        var outcome = "error";
        try
        {
            var result = await _pipeline(context, cancellationToken).ConfigureAwait(false);
            outcome = result.Cached ? "cached" : result.Skipped ? "skipped" : "ok";
            span?.SetTag("ordo.tool.outcome", outcome);
            return result;
        }
        catch (ToolCallException e)
        {
            outcome = e.Error;
            OrdoSpans.Failed(span, e.Error, e.Message);
            throw;
        }
        catch (Exception e) when (span is not null)
        {
            OrdoSpans.Failed(span, e.GetType().FullName ?? "exception", e.Message);
            throw;
        }
        finally
        {
            if (OrdoMetrics.ToolDuration.Enabled)
            {
                OrdoMetrics.ToolDuration.Record(_time.GetElapsedTime(started).TotalSeconds, new System.Diagnostics.TagList { { "gen_ai.tool.name", toolName }, { "ordo.tool.outcome", outcome } });
            }
        }
    }
}

/// <summary>An <see cref="Agents.IToolInvoker"/> bound to one step and agent.</summary>
internal sealed class ScopedToolInvoker(ToolGateway gateway, IToolCallScope scope, AgentDefinition? agent) : Agents.IToolInvoker
{
    public ValueTask<ToolCallResult> CallAsync(string tool, JsonElement args, CancellationToken cancellationToken = default)
        => gateway.CallAsync(scope, agent, tool, args, cancellationToken);
}
