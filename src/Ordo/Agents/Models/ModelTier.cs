namespace Ordo.Agents.Models;

/// <summary>A model tier (fast, standard, high, …) and the provider behind it.</summary>
public sealed class ModelTier
{
    /// <summary>The tier name.</summary>
    public required string Name { get; init; }
    /// <summary><c>scripted</c>, <c>openai</c>, <c>azure-openai</c>, <c>ollama</c>, <c>vllm</c>, <c>lmstudio</c>, <c>openai-compatible</c>.</summary>
    public required string Provider { get; init; }
    /// <summary>The model id.</summary>
    public string Model { get; init; } = "";
    /// <summary>The endpoint.</summary>
    public string? Endpoint { get; init; }
    /// <summary>The API key as written (may be <c>${secret:NAME}</c>, resolved only when a client is created).</summary>
    public string? ApiKey { get; init; }
    /// <summary>USD per 1,000 input tokens.</summary>
    public decimal InputPer1K { get; init; }
    /// <summary>USD per 1,000 output tokens.</summary>
    public decimal OutputPer1K { get; init; }
    /// <summary>The responses of a scripted tier.</summary>
    public ScriptedFixtures? Fixtures { get; init; }
    /// <summary>
    /// The most output tokens one call may ask for (sent to the provider). Unset, a call is not bounded, except under a
    /// token or cost budget, where <see cref="BudgetedMaxOutputTokens"/> applies so that the call's reservation is finite.
    /// </summary>
    public long? MaxOutputTokens { get; init; }

    /// <summary>The output bound of a call made under a token or cost budget when the tier sets none: 4,096 tokens.</summary>
    public const long BudgetedMaxOutputTokens = 4096;

    /// <summary>Time one call may take. Default: 60 s.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// The tier's circuit breaker (<c>circuit_breaker:</c>). Default: <see cref="Tools.CircuitBreakerSettings.Default"/>, the
    /// tools' default: open at 50% failures over at least 10 calls in 30 s, for 30 s.
    /// </summary>
    public Tools.CircuitBreakerSettings CircuitBreaker { get; init; } = Tools.CircuitBreakerSettings.Default;

    /// <summary>The cost of a call.</summary>
    public decimal CostOf(long inputTokens, long outputTokens)
        => (InputPer1K * inputTokens / 1000m) + (OutputPer1K * outputTokens / 1000m);
}

/// <summary>The fixtures of a scripted provider: responses matched by agent, attempt and condition.</summary>
public sealed class ScriptedFixtures
{
    /// <summary>The file they came from.</summary>
    public required string File { get; init; }
    /// <summary>Responses in file order; the first match is used.</summary>
    public required IReadOnlyList<ScriptedResponse> Responses { get; init; }
}

/// <summary>One scripted response.</summary>
public sealed class ScriptedResponse
{
    /// <summary>The agent it answers.</summary>
    public required string Agent { get; init; }
    /// <summary>Only this attempt, if set.</summary>
    public int? Attempt { get; init; }
    /// <summary>Only this round of a tool-using agent's step (1 = its first model call), if set.</summary>
    public int? Round { get; init; }
    /// <summary>Only when this holds over <c>input</c>, <c>round</c> and <c>tool_results</c>.</summary>
    public Expressions.CompiledExpression? When { get; init; }
    /// <summary>The response text.</summary>
    public string? Content { get; init; }
    /// <summary>The tool calls this response asks for (a tool-using agent), instead of content.</summary>
    public IReadOnlyList<ScriptedToolCall>? ToolCalls { get; init; }
    /// <summary>A simulated fault: <c>timeout</c>, <c>rate_limited</c>, <c>server_error</c>, <c>malformed</c>.</summary>
    public string? Error { get; init; }
    /// <summary>Reported input tokens.</summary>
    public long InputTokens { get; init; }
    /// <summary>Reported output tokens.</summary>
    public long OutputTokens { get; init; }
    /// <summary>Where it was written.</summary>
    public required string Location { get; init; }
}

/// <summary>A tool call a scripted response asks for.</summary>
/// <param name="Tool">The tool's name as defined in tools.yaml (<c>tickets.lookup</c>).</param>
/// <param name="Args">The arguments (a JSON object).</param>
public sealed record ScriptedToolCall(string Tool, System.Text.Json.JsonElement Args);
