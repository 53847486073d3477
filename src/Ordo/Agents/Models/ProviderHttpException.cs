using System.Net;

namespace Ordo.Agents.Models;

/// <summary>
/// A provider answered with an error status. The status, the reason, the start of the body and the raw
/// <c>retry-after-ms</c> and <c>Retry-After</c> headers are kept (the delay is read against the runtime's clock later).
/// </summary>
internal sealed class ProviderHttpException(int status, string? reason, string? body, string? retryAfterMs, string? retryAfter)
    : HttpRequestException($"the provider answered HTTP {status}", null, (HttpStatusCode)status)
{
    public int Status { get; } = status;
    public string? Reason { get; } = reason;
    public string? Body { get; } = body;
    public string? RetryAfterMs { get; } = retryAfterMs;
    public string? RetryAfterHeader { get; } = retryAfter;
}
