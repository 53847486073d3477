using Ordo.Schemas;

namespace Ordo.Tools;

/// <summary>How much a tool changes the world.</summary>
public enum ToolEffect
{
    /// <summary>Reads only; may be cached.</summary>
    Read,
    /// <summary>Changes something; retried only with its idempotency key.</summary>
    Write,
    /// <summary>Changes something that cannot be undone.</summary>
    Irreversible,
}

/// <summary>A tool: an external side effect, run only by the gateway.</summary>
public sealed class ToolDefinition
{
    /// <summary>The tool name (<c>ledger.query</c>).</summary>
    public required string Name { get; init; }
    /// <summary><c>sql</c>, <c>http</c>, <c>mcp</c> or <c>code</c>.</summary>
    public required string Kind { get; init; }
    /// <summary>Read, write or irreversible.</summary>
    public ToolEffect Effect { get; init; } = ToolEffect.Write;
    /// <summary>Schema of the arguments, checked before any call.</summary>
    public JsonSchemaContract? Args { get; init; }
    /// <summary>Schema of the result.</summary>
    public JsonSchemaContract? Result { get; init; }
    /// <summary>Time one call may take.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Retries inside the gateway.</summary>
    public ToolRetrySettings Retry { get; init; } = ToolRetrySettings.Default;
    /// <summary>The circuit breaker.</summary>
    public CircuitBreakerSettings CircuitBreaker { get; init; } = CircuitBreakerSettings.Default;
    /// <summary>Rate limits.</summary>
    public RateLimitSettings? RateLimit { get; init; }
    /// <summary>How long results of a read tool are cached.</summary>
    public TimeSpan? Cache { get; init; }
    /// <summary>Agents allowed to request it (null: any).</summary>
    public IReadOnlyList<string>? AllowAgents { get; init; }
    /// <summary>Tenants allowed to use it (null: any).</summary>
    public IReadOnlyList<string>? AllowTenants { get; init; }
    /// <summary>What it does.</summary>
    public string? Description { get; init; }

    /// <summary>The connection (sql).</summary>
    public string? Connection { get; init; }
    /// <summary>The statement with <c>@name</c> parameters (sql).</summary>
    public string? Query { get; init; }
    /// <summary>The most rows one call may return (sql); a call that returns more fails as <c>result_too_large</c>.</summary>
    public int MaxRows { get; init; } = DefaultMaxRows;
    /// <summary>
    /// The most bytes the JSON result of one call may take (sql, code, mcp; an http tool's answer is bounded by
    /// <see cref="MaxResponseBytes"/>); a larger one fails as <c>result_too_large</c> and is not recorded.
    /// </summary>
    public long MaxResultBytes { get; init; } = DefaultMaxResultBytes;
    /// <summary>The HTTP method (http).</summary>
    public string Method { get; init; } = "POST";
    /// <summary>The URL template with <c>{field}</c> placeholders (http).</summary>
    public string? Url { get; init; }
    /// <summary>Request headers; values may hold <c>${secret:NAME}</c> (http).</summary>
    public IReadOnlyDictionary<string, string> Headers { get; init; } = new Dictionary<string, string>();
    /// <summary>Which redirects are followed (http); by default only those within the URL's origin.</summary>
    public HttpRedirects Redirects { get; init; } = HttpRedirects.SameOrigin;
    /// <summary>The largest response body accepted, in bytes (http); a larger answer fails the call unread.</summary>
    public long MaxResponseBytes { get; init; } = DefaultMaxResponseBytes;
    /// <summary>
    /// Addresses (<c>169.254.169.254</c>), networks (<c>169.254.0.0/16</c>) and host names (<c>metadata.google.internal</c>)
    /// this tool may reach although they are refused by default: link-local addresses and cloud metadata endpoints (http).
    /// </summary>
    public IReadOnlyList<string> AllowAddresses { get; init; } = [];
    /// <summary>The MCP server (mcp).</summary>
    public string? Server { get; init; }
    /// <summary>The tool name on the MCP server (mcp).</summary>
    public string? McpTool { get; init; }
    /// <summary>The implementing type (code); the tool name is looked up when absent.</summary>
    public string? Type { get; init; }

    /// <summary>The effect as written in files.</summary>
    public string EffectName => Effect.ToString().ToLowerInvariant();

    /// <summary>The default of <see cref="MaxResponseBytes"/>: 4 MiB.</summary>
    public const long DefaultMaxResponseBytes = 4 * 1024 * 1024;

    /// <summary>The largest <see cref="MaxResponseBytes"/> a definition may set: 256 MiB.</summary>
    public const long MaxResponseBytesCeiling = 256 * 1024 * 1024;

    /// <summary>The default of <see cref="MaxRows"/>: 10,000 rows.</summary>
    public const int DefaultMaxRows = 10_000;

    /// <summary>The default of <see cref="MaxResultBytes"/>: 4 MiB.</summary>
    public const long DefaultMaxResultBytes = 4 * 1024 * 1024;

    /// <summary>The largest <see cref="MaxResultBytes"/> a definition may set: 256 MiB, as for an http tool's answer.</summary>
    public const long MaxResultBytesCeiling = 256 * 1024 * 1024;
}

/// <summary>Which redirects an http tool follows (<c>redirects:</c> in tools files).</summary>
public enum HttpRedirects
{
    /// <summary><c>none</c>: a 3xx answer fails the call.</summary>
    None,
    /// <summary><c>same_origin</c> (default): only to the same scheme, host and port; another origin fails the call.</summary>
    SameOrigin,
    /// <summary><c>any</c>: to any origin, without the secret headers (nor Authorization, Cookie, Proxy-Authorization) there.</summary>
    Any,
}

/// <summary>Gateway retries of a tool call.</summary>
public sealed record ToolRetrySettings(int MaxAttempts, TimeSpan Backoff, TimeSpan MaxBackoff)
{
    /// <summary>3 attempts, 200 ms base backoff, 10 s cap.</summary>
    public static ToolRetrySettings Default { get; } = new(3, TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(10));
}

/// <summary>A circuit breaker per tool.</summary>
public sealed record CircuitBreakerSettings(double FailureRatio, int MinCalls, TimeSpan Break, TimeSpan SamplingDuration)
{
    /// <summary>Opens at 50% failures over at least 10 calls in 30 s, for 30 s.</summary>
    public static CircuitBreakerSettings Default { get; } = new(0.5, 10, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(30));
}

/// <summary>Rate limits of a tool.</summary>
public sealed record RateLimitSettings(int? PerJob, int? PerTenantPerMinute);
