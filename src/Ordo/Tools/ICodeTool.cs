using System.Text.Json;

namespace Ordo.Tools;

/// <summary>A tool written in C#. Called only by the tool gateway, which validates arguments and records the call.</summary>
public interface ICodeTool
{
    /// <summary>Runs the tool.</summary>
    ValueTask<JsonElement> InvokeAsync(ToolInvocation invocation, CancellationToken cancellationToken);
}

/// <summary>One execution of a tool call by an executor.</summary>
public sealed class ToolInvocation
{
    /// <summary>The tool.</summary>
    public required ToolDefinition Tool { get; init; }
    /// <summary>The validated arguments.</summary>
    public required JsonElement Args { get; init; }
    /// <summary>Stable across retries and crashes: job, step, visit and call index. Pass it to the dependency so repeats are applied once.</summary>
    public required string IdempotencyKey { get; init; }
    /// <summary>The job.</summary>
    public required JobId JobId { get; init; }
    /// <summary>The call's id in the job's log (<c>ToolCallRequested.call_id</c>).</summary>
    public string CallId { get; init; } = "";
    /// <summary>The tenant.</summary>
    public required string Tenant { get; init; }
    /// <summary>The project (connections, base directory).</summary>
    public required Configuration.ProjectDefinition Project { get; init; }
    /// <summary>Whether the call must have no side effect (shadow runs).</summary>
    public bool DryRun { get; init; }

    /// <summary>Resolves <c>${secret:NAME}</c> in the tool's definition; only executors may call it.</summary>
    public Gateway.SecretResolver Secrets { get; init; } = new();
}

/// <summary>Runs tool calls of one kind (<c>sql</c>, <c>http</c>, <c>code</c>, …).</summary>
public interface IToolExecutor
{
    /// <summary>The tool kind it runs.</summary>
    string Kind { get; }

    /// <summary>Runs one call; throws <see cref="ToolExecutionException"/> on failure.</summary>
    ValueTask<JsonElement> ExecuteAsync(ToolInvocation invocation, CancellationToken cancellationToken);
}

/// <summary>A tool call failed in its executor.</summary>
public sealed class ToolExecutionException : OrdoException
{
    /// <summary>Creates the error.</summary>
    public ToolExecutionException(string error, string message, bool retryable, Exception? inner = null) : base(message, inner)
    {
        Error = error;
        Retryable = retryable;
    }

    /// <summary>A short kind: <c>timeout</c>, <c>http_500</c>, <c>sql_error</c>, <c>malformed_response</c>, …</summary>
    public string Error { get; }

    /// <summary>Whether repeating the call could succeed.</summary>
    public bool Retryable { get; }
}
