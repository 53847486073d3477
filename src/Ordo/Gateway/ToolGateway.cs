using System.Diagnostics;
using System.Text.Json;
using Ordo.Events;
using Ordo.Tools;
using Ordo.Workflows;

namespace Ordo.Gateway;

/// <summary>
/// The one path from agents and steps to side effects. Every call is checked (the tool exists, the agent may use it,
/// the arguments satisfy the tool's schema), given an idempotency key that is stable across retries and crashes,
/// run by the executor of its kind under a timeout, checked against its result schema, and recorded as events.
/// </summary>
/// <remarks>Thread-safe.</remarks>
public sealed partial class ToolGateway : IDisposable
{
    private readonly Dictionary<string, IToolExecutor> _executors;
    private readonly TimeProvider _time;
    private readonly Engine.IToolCallGuard? _guard;
    private readonly SecretResolver _secrets;
    private readonly SecretRedactor _redactor;
    private readonly ToolResilience _resilience;
    private readonly ToolRateLimits _rateLimits = new();
    private readonly ToolResultCache _cache;

    /// <summary>Creates a gateway over executors (one per tool kind).</summary>
    public ToolGateway(IEnumerable<IToolExecutor> executors, TimeProvider? timeProvider = null, Engine.IToolCallGuard? guard = null, SecretResolver? secrets = null, ToolResilience? resilience = null)
    {
        ArgumentNullException.ThrowIfNull(executors);
        _executors = executors.ToDictionary(e => e.Kind, StringComparer.Ordinal);
        _time = timeProvider ?? TimeProvider.System;
        _guard = guard;
        _secrets = secrets ?? new SecretResolver();
        _redactor = new SecretRedactor(_secrets);
        _resilience = resilience ?? new ToolResilience(_time);
        _cache = new ToolResultCache(_time);
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
    public async ValueTask<ToolCallResult> CallAsync(IToolCallScope scope, AgentDefinition? agent, string toolName, JsonElement args, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(scope);
        var index = scope.NextCallIndex();
        var callId = CallId(scope.Step, index);
        var key = IdempotencyKey(scope.JobId, scope.Step, index);
        var agentRef = agent?.Ref;

        ToolCallException Refuse(string tool, string error, string message, bool retryable = false)
        {
            scope.Record(EventFactory.Step(EventTypes.ToolCallFailed, scope.Step, new ToolCallFailedPayload(callId, tool, error, message, 0, retryable), _time.GetUtcNow(), agent: agentRef));
            return new ToolCallException(callId, tool, error, message, retryable);
        }

        if (!scope.Project.Tools.TryGetValue(toolName, out var tool))
        {
            throw Refuse(toolName, "unknown_tool", scope.Project.Tools.Count == 0
                ? $"tool '{toolName}' is not defined (no tools are configured)"
                : $"tool '{toolName}' is not defined (defined: {string.Join(", ", scope.Project.Tools.Keys.Order(StringComparer.Ordinal))})");
        }

        if (agent is not null && !agent.Tools.Contains(toolName, StringComparer.Ordinal))
        {
            throw Refuse(toolName, "not_allowed", $"agent '{agent.Name}' may not call '{toolName}' (its tools: {(agent.Tools.Count == 0 ? "none" : string.Join(", ", agent.Tools))})");
        }

        if (tool.AllowAgents is { } agents && agent is not null && !agents.Contains(agent.Name, StringComparer.Ordinal))
        {
            throw Refuse(toolName, "not_allowed", $"tool '{toolName}' does not allow agent '{agent.Name}'");
        }

        if (tool.AllowTenants is { } tenants && !tenants.Contains(scope.Tenant, StringComparer.Ordinal))
        {
            throw Refuse(toolName, "not_allowed", $"tool '{toolName}' is not allowed for tenant '{scope.Tenant}'");
        }

        args = _redactor.Redact(args);
        if (tool.Args is { } schema && schema.Validate(args) is { Count: > 0 } argErrors)
        {
            throw Refuse(toolName, "invalid_args", "arguments do not match the tool's schema: " + string.Join("; ", argErrors));
        }

        if (_guard is not null)
        {
            await _guard.CheckAsync(scope, agent, tool, args, callId, index, cancellationToken).ConfigureAwait(false);
        }

        if (!_executors.TryGetValue(tool.Kind, out var executor))
        {
            throw Refuse(toolName, "unsupported_kind", $"tools of kind '{tool.Kind}' cannot run in this process");
        }

        if (tool.RateLimit?.PerTenantPerMinute is { } perMinute && !await _rateLimits.AcquireAsync(tool.Name, scope.Tenant, perMinute, cancellationToken).ConfigureAwait(false))
        {
            throw Refuse(toolName, "rate_limited", $"tool '{toolName}' is over its rate limit of {perMinute} calls per minute for tenant '{scope.Tenant}'", retryable: true);
        }

        if (tool.Effect == ToolEffect.Read && tool.Cache is not null && _cache.TryGet(tool.Name, scope.Tenant, args, out var cached))
        {
            await RecordIntentAsync(scope, agent, tool, EventFactory.Step(EventTypes.ToolCallRequested, scope.Step, new ToolCallRequestedPayload(callId, toolName, tool.Kind, tool.EffectName, key, args, scope.DryRun), _time.GetUtcNow(), agent: agentRef), callId, cancellationToken).ConfigureAwait(false);
            scope.Record(EventFactory.Step(EventTypes.ToolCallSucceeded, scope.Step, new ToolCallSucceededPayload(callId, toolName, cached, 0, Cached: true, scope.DryRun), _time.GetUtcNow(), agent: agentRef));
            return new ToolCallResult(callId, toolName, cached, Cached: true);
        }

        var requested = EventFactory.Step(EventTypes.ToolCallRequested, scope.Step,
            new ToolCallRequestedPayload(callId, toolName, tool.Kind, tool.EffectName, key, args, scope.DryRun), _time.GetUtcNow(), agent: agentRef);
        await RecordIntentAsync(scope, agent, tool, requested, callId, cancellationToken).ConfigureAwait(false);

        var started = _time.GetTimestamp();
        if (scope.DryRun && tool.Effect != ToolEffect.Read)
        {
            // Recorded, not executed: nothing reaches the tool, so there is no real result to check against its schema.
            var skipped = JsonElementFactory.Parse("""{"dry_run":true}""");
            scope.Record(EventFactory.Step(EventTypes.ToolCallSucceeded, scope.Step, new ToolCallSucceededPayload(callId, toolName, skipped, 0, false, true)
            {
                Skipped = true,
                ResultSchema = tool.Result is null ? null : "not_checked",
            }, _time.GetUtcNow(), agent: agentRef));
            return new ToolCallResult(callId, toolName, skipped, Cached: false, Skipped: true);
        }

        var attempts = 0;
        JsonElement result;
        ToolPipeline? pipeline = null;
        var circuitBefore = Polly.CircuitBreaker.CircuitState.Closed;
        try
        {
            var invocation = new ToolInvocation { Tool = tool, Args = args, IdempotencyKey = key, JobId = scope.JobId, Tenant = scope.Tenant, Project = scope.Project, DryRun = scope.DryRun, Secrets = _secrets };
            pipeline = _resilience.For(tool, ProjectDependency.Of(tool, scope.Project));
            circuitBefore = pipeline.Circuit.CircuitState;
            pipeline.Budget.Deposit();
            try
            {
                result = await pipeline.Pipeline.ExecuteAsync(
                    async ct =>
                    {
                        Interlocked.Increment(ref attempts);
                        return await CancelledAndAwaitedAsync(executor.ExecuteAsync(invocation, ct).AsTask(), ct).ConfigureAwait(false);
                    },
                    cancellationToken).ConfigureAwait(false);
            }
            catch (Polly.CircuitBreaker.BrokenCircuitException e)
            {
                throw new ToolExecutionException("circuit_open", $"the circuit of tool '{toolName}' is open after repeated failures; calls are refused until it closes ({e.Message})", retryable: true, e);
            }
            catch (Polly.Timeout.TimeoutRejectedException e)
            {
                throw new ToolExecutionException("timeout", $"tool '{toolName}' gave no answer within its timeout of {Durations.Format(tool.Timeout)}", retryable: true, e);
            }
            catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                throw new ToolExecutionException("timeout", $"tool '{toolName}' gave no answer within its timeout of {Durations.Format(tool.Timeout)}", retryable: true, e);
            }
        }
        catch (ToolExecutionException e)
        {
            RecordCircuit(scope, pipeline, circuitBefore, toolName, callId);
            var ms = _time.GetElapsedTime(started).TotalMilliseconds;
            var message = _redactor.Redact(e.Message);
            scope.Record(EventFactory.Step(EventTypes.ToolCallFailed, scope.Step, new ToolCallFailedPayload(callId, toolName, e.Error, message, ms, e.Retryable) { Attempts = attempts }, _time.GetUtcNow(), agent: agentRef));
            throw new ToolCallException(callId, toolName, e.Error, message, e.Retryable);
        }

        RecordCircuit(scope, pipeline, circuitBefore, toolName, callId);

        // Whatever the tool's kind, no result larger than its limit reaches the log (an http tool's own limit is on the
        // answer it reads, a sql tool's on the rows it reads; a code or MCP tool has only this one).
        var limit = tool.Kind == "http" ? Math.Max(tool.MaxResultBytes, tool.MaxResponseBytes) : tool.MaxResultBytes;
        if (System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(result).Length is var size && size > limit)
        {
            var ms = _time.GetElapsedTime(started).TotalMilliseconds;
            var message = $"tool '{toolName}' returned {size} bytes, more than its limit of {limit} (max_result_bytes)";
            scope.Record(EventFactory.Step(EventTypes.ToolCallFailed, scope.Step, new ToolCallFailedPayload(callId, toolName, "result_too_large", message, ms, false) { Attempts = attempts }, _time.GetUtcNow(), agent: agentRef));
            throw new ToolCallException(callId, toolName, "result_too_large", message, retryable: false);
        }

        result = _redactor.Redact(result);

        if (tool.Result is { } resultSchema && resultSchema.Validate(result) is { Count: > 0 } resultErrors)
        {
            var ms = _time.GetElapsedTime(started).TotalMilliseconds;
            var message = "the result does not match the tool's result schema: " + string.Join("; ", resultErrors);
            scope.Record(EventFactory.Step(EventTypes.ToolCallFailed, scope.Step, new ToolCallFailedPayload(callId, toolName, "invalid_result", message, ms, true) { Attempts = attempts }, _time.GetUtcNow(), agent: agentRef));
            throw new ToolCallException(callId, toolName, "invalid_result", message, retryable: true);
        }

        if (tool.Effect == ToolEffect.Read && tool.Cache is { } ttl && !scope.DryRun)
        {
            _cache.Put(tool.Name, scope.Tenant, args, result, ttl);
        }

        var elapsed = _time.GetElapsedTime(started).TotalMilliseconds;
        scope.Record(EventFactory.Step(EventTypes.ToolCallSucceeded, scope.Step, new ToolCallSucceededPayload(callId, toolName, result, elapsed, false, scope.DryRun) { Attempts = attempts == 0 ? null : attempts }, _time.GetUtcNow(), agent: agentRef));
        Debug.Assert(elapsed >= 0);
        return new ToolCallResult(callId, toolName, result, Cached: false);
    }
}

/// <summary>How a call that runs out of time ends.</summary>
public sealed partial class ToolGateway
{
    /// <summary>
    /// Records a call's intent: through the guard (which counts it against the job's budgets in the same write), or,
    /// without one, with the step for a read and before the effect for a side effect (so that after a crash the log
    /// shows the call was attempted).
    /// </summary>
    private async ValueTask RecordIntentAsync(IToolCallScope scope, AgentDefinition? agent, ToolDefinition tool, NewEvent requested, string callId, CancellationToken cancellationToken)
    {
        if (_guard is not null)
        {
            await _guard.RecordIntentAsync(scope, agent, tool, requested, callId, cancellationToken).ConfigureAwait(false);
        }
        else if (tool.Effect == ToolEffect.Read)
        {
            scope.Record(requested);
        }
        else
        {
            await scope.AppendNowAsync(requested, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>How long a cancelled executor gets to stop before the call is reported over without it.</summary>
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(5);

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
                await call.WaitAsync(StopGrace, _time, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Stopped (cancelled, failed), or still running past the grace: the call is over either way.
            }

            throw;
        }
    }
}

/// <summary>Circuit transitions, recorded in the job whose call saw them.</summary>
public sealed partial class ToolGateway
{
    private void RecordCircuit(IToolCallScope scope, ToolPipeline? pipeline, Polly.CircuitBreaker.CircuitState before, string tool, string callId)
    {
        if (pipeline is null) return;
        var after = pipeline.Circuit.CircuitState;
        if (ToolResilience.StateName(after) == ToolResilience.StateName(before)) return;
        scope.Record(EventFactory.Step(EventTypes.CircuitStateChanged, scope.Step,
            new CircuitStateChangedPayload(tool, ToolResilience.StateName(before), ToolResilience.StateName(after), callId), _time.GetUtcNow()));
    }
}

/// <summary>An <see cref="Agents.IToolInvoker"/> bound to one step and agent.</summary>
internal sealed class ScopedToolInvoker(ToolGateway gateway, IToolCallScope scope, AgentDefinition? agent) : Agents.IToolInvoker
{
    public ValueTask<ToolCallResult> CallAsync(string tool, JsonElement args, CancellationToken cancellationToken = default)
        => gateway.CallAsync(scope, agent, tool, args, cancellationToken);
}
