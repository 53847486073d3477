using System.Text.Json;
using Ordo.Events;
using Ordo.Tools;
using Ordo.Workflows;

namespace Ordo.Gateway;

/// <summary>One tool call on its way through the gateway's pipeline: who asks, for which tool, with what, under which ids.</summary>
/// <remarks>One instance per call. <see cref="Attempts"/> may be read while the call runs; the rest is set before it runs.</remarks>
public sealed class ToolCallContext
{
    private readonly TimeProvider _time;
    private int _attempts;

    internal ToolCallContext(IToolCallScope scope, AgentDefinition? agent, string toolName, JsonElement args, int callIndex, TimeProvider time, string? idempotencyKey = null)
    {
        Scope = scope;
        Agent = agent;
        ToolName = toolName;
        Args = args;
        CallIndex = callIndex;
        CallId = ToolGateway.CallId(scope.Step, callIndex);
        IdempotencyKey = idempotencyKey ?? ToolGateway.IdempotencyKey(scope.JobId, scope.Step, callIndex);
        _time = time;
    }

    /// <summary>The step the call is made for, and where its events are recorded.</summary>
    public IToolCallScope Scope { get; }

    /// <summary>The agent the call is made for; null for a <c>tool</c> step.</summary>
    public AgentDefinition? Agent { get; }

    /// <summary>The tool's name as requested.</summary>
    public string ToolName { get; }

    /// <summary>The tool's definition: null until the gateway found it (before any handler a host adds runs).</summary>
    public ToolDefinition? Tool { get; internal set; }

    /// <summary>The arguments: secret values redacted and checked against the tool's schema before any handler a host adds runs.</summary>
    public JsonElement Args { get; internal set; }

    /// <summary>The call's index in its step visit (0, 1, …).</summary>
    public int CallIndex { get; }

    /// <summary>The call's id in the job's log (see <see cref="ToolGateway.CallId"/>).</summary>
    public string CallId { get; }

    /// <summary>The key handed to the tool, the same on every attempt and after a crash (see <see cref="ToolGateway.IdempotencyKey"/>).</summary>
    public string IdempotencyKey { get; }

    /// <summary>How many times the tool was run for this call so far (retries included).</summary>
    public int Attempts => Volatile.Read(ref _attempts);

    /// <summary>The executor of the tool's kind, once the gateway found it.</summary>
    internal IToolExecutor? Executor { get; set; }

    /// <summary>Counts one more run of the tool.</summary>
    internal void AddAttempt() => Interlocked.Increment(ref _attempts);

    /// <summary>
    /// Refuses the call before it runs: records <c>ToolCallFailed</c> with <paramref name="error"/> and returns the
    /// exception to throw.
    /// </summary>
    /// <param name="error">A short kind, such as <c>not_allowed</c>.</param>
    /// <param name="message">What was wrong, for the log and the step's failure.</param>
    /// <param name="retryable">Whether another attempt of the step could succeed.</param>
    public ToolCallException Refuse(string error, string message, bool retryable = false)
    {
        Scope.Record(EventFactory.Step(EventTypes.ToolCallFailed, Scope.Step, new ToolCallFailedPayload(CallId, ToolName, error, message, 0, retryable), _time.GetUtcNow(), agent: Agent?.Ref));
        return new ToolCallException(CallId, ToolName, error, message, retryable);
    }
}
