using System.Text.Json;

namespace Ordo.Gateway;

/// <summary>The result of a tool call made through the gateway.</summary>
/// <param name="CallId">The call's id in the job's log (<c>ToolCallSucceeded.payload.call_id</c>), usable as evidence <c>ref</c>.</param>
/// <param name="Tool">The tool.</param>
/// <param name="Value">The result (<c>{ rows, rows_affected }</c> for sql, the parsed body for http).</param>
/// <param name="Cached">Whether it came from the response cache.</param>
/// <param name="Skipped">Whether the call was recorded but not executed (a side effect in dry run): <paramref name="Value"/> is then <c>{ "dry_run": true }</c>, not a result of the tool.</param>
public sealed record ToolCallResult(string CallId, string Tool, JsonElement Value, bool Cached, bool Skipped = false);

/// <summary>A tool call failed or was refused by the gateway.</summary>
public sealed class ToolCallException : OrdoException
{
    /// <summary>Creates the error.</summary>
    public ToolCallException(string callId, string tool, string error, string message, bool retryable, Exception? inner = null)
        : base($"tool '{tool}' ({callId}): {message}", inner)
    {
        CallId = callId;
        Tool = tool;
        Error = error;
        Retryable = retryable;
    }

    /// <summary>The call id.</summary>
    public string CallId { get; }
    /// <summary>The tool.</summary>
    public string Tool { get; }
    /// <summary>A short kind: <c>unknown_tool</c>, <c>not_allowed</c>, <c>invalid_args</c>, <c>timeout</c>, …</summary>
    public string Error { get; }
    /// <summary>Whether another attempt of the step could succeed.</summary>
    public bool Retryable { get; }
}
