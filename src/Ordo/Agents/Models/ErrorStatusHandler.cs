namespace Ordo.Agents.Models;

/// <summary>
/// Turns a provider's error status into a <see cref="ProviderHttpException"/> before the provider's client sees it, so
/// that the status, the provider's message and its <c>Retry-After</c> survive clients that keep only the status
/// (OllamaSharp). The body read is bounded by the handler below.
/// </summary>
internal sealed class ErrorStatusHandler(HttpMessageHandler inner) : DelegatingHandler(inner)
{
    /// <summary>The most of an error body kept for the message.</summary>
    private const int MaxErrorBody = 4096;

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (response.IsSuccessStatusCode) return response;
        using (response)
        {
            string? body;
            try
            {
                body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
                if (body.Length > MaxErrorBody) body = body[..MaxErrorBody];
            }
            catch (HttpRequestException)
            {
                body = null;
            }

            throw new ProviderHttpException((int)response.StatusCode, response.ReasonPhrase, body, Header(response, "retry-after-ms"), Header(response, "Retry-After"));
        }
    }

    private static string? Header(HttpResponseMessage response, string name)
        => response.Headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;
}
