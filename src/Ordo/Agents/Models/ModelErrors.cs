namespace Ordo.Agents.Models;

/// <summary>
/// The kinds of failure of a model call, as <see cref="ModelCallException.Error"/>, <c>ModelCallFailed.error</c> and
/// <c>StepFailed.error</c> record them. Which are retried by the step is said on each; the step's <c>retry</c> is the only
/// retry of a model call (providers' own clients do not retry).
/// </summary>
public static class ModelErrors
{
    /// <summary>No answer within the tier's <c>timeout</c> (or HTTP 408). Retryable.</summary>
    public const string Timeout = "timeout";
    /// <summary>HTTP 429: the provider asks to slow down, for its <c>Retry-After</c> when it gives one. Retryable, not before that delay.</summary>
    public const string RateLimited = "rate_limited";
    /// <summary>HTTP 5xx. Retryable.</summary>
    public const string ServerError = "server_error";
    /// <summary>The provider could not be reached: connection refused or reset, name not resolved, TLS failure. Retryable.</summary>
    public const string ConnectionError = "connection_error";
    /// <summary>The provider answered, but not in its wire format: not JSON, no choices, no message, too large. Retryable.</summary>
    public const string MalformedResponse = "malformed_response";
    /// <summary>The provider refused the request itself (another 4xx: bad key, unknown model, invalid request). Not retryable.</summary>
    public const string ProviderRefused = "provider_refused";
    /// <summary>The tier's circuit breaker is open: the call was not sent. Retryable (the next attempt may go to the tier's fallback).</summary>
    public const string CircuitOpen = "circuit_open";
    /// <summary>The tier cannot be used as configured (no endpoint, no key, a secret not found). Not retryable.</summary>
    public const string ConfigError = "config_error";

    /// <summary>Whether a failure of this kind says the provider is unwell, and so counts toward opening the tier's circuit.</summary>
    public static bool CountsAgainstProvider(string error) => error is Timeout or RateLimited or ServerError or ConnectionError or MalformedResponse;
}
