using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Ordo.Tools;

/// <summary>
/// Runs <c>http</c> tools. <c>{field}</c> placeholders in the URL take argument values (URL-encoded); the other
/// arguments are the JSON body (POST, PUT, PATCH) or the query string (GET, DELETE). Headers may hold
/// <c>${secret:NAME}</c>. The idempotency key is sent as <c>Idempotency-Key</c>. The result is the response body
/// parsed as JSON. 408, 429 and 5xx answers, timeouts and connection failures are retryable; other 4xx are not.
/// </summary>
public sealed partial class HttpToolExecutor(HttpClient http) : IToolExecutor
{
    /// <inheritdoc />
    public string Kind => "http";

    /// <inheritdoc />
    public async ValueTask<JsonElement> ExecuteAsync(ToolInvocation invocation, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(invocation);
        var tool = invocation.Tool;
        var args = invocation.Args.ValueKind == JsonValueKind.Object ? invocation.Args : JsonElementFactory.EmptyObject;
        var used = new HashSet<string>(StringComparer.Ordinal);
        string url;
        try
        {
            url = invocation.Secrets.Resolve(Placeholder().Replace(tool.Url!, m =>
            {
                var name = m.Groups[1].Value;
                used.Add(name);
                if (!args.TryGetProperty(name, out var v) || v.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
                {
                    throw new ToolExecutionException("invalid_args", $"the URL needs argument '{name}'", retryable: false);
                }

                return Uri.EscapeDataString(v.ValueKind == JsonValueKind.String ? v.GetString()! : v.GetRawText());
            }));
        }
        catch (Gateway.SecretNotFoundException e)
        {
            throw new ToolExecutionException("config_error", e.Message, retryable: false, e);
        }

        var method = new HttpMethod(tool.Method);
        var rest = args.EnumerateObject().Where(p => !used.Contains(p.Name)).ToList();
        if (method == HttpMethod.Get || method == HttpMethod.Delete)
        {
            if (rest.Count > 0)
            {
                var query = string.Join('&', rest.Select(p => $"{Uri.EscapeDataString(p.Name)}={Uri.EscapeDataString(p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText())}"));
                url += (url.Contains('?', StringComparison.Ordinal) ? "&" : "?") + query;
            }
        }

        using var request = new HttpRequestMessage(method, url);
        if (method != HttpMethod.Get && method != HttpMethod.Delete)
        {
            var body = new StringBuilder("{");
            foreach (var p in rest)
            {
                if (body.Length > 1) body.Append(',');
                body.Append(JsonSerializer.Serialize(p.Name, ToolJson.Default.String)).Append(':').Append(p.Value.GetRawText());
            }

            body.Append('}');
            request.Content = new StringContent(body.ToString(), Encoding.UTF8, "application/json");
        }

        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        request.Headers.TryAddWithoutValidation("Idempotency-Key", invocation.IdempotencyKey);
        request.Headers.TryAddWithoutValidation("X-Ordo-Job", invocation.JobId.Value);
        foreach (var (name, raw) in tool.Headers)
        {
            string value;
            try
            {
                value = invocation.Secrets.Resolve(raw);
            }
            catch (Gateway.SecretNotFoundException e)
            {
                throw new ToolExecutionException("config_error", e.Message, retryable: false, e);
            }

            if (!request.Headers.TryAddWithoutValidation(name, value))
            {
                request.Content?.Headers.TryAddWithoutValidation(name, value);
            }
        }

        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new ToolExecutionException("connection_error", $"{tool.Method} {Describe(request.RequestUri)}: {e.Message}", retryable: true, e);
        }

        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            var code = (int)response.StatusCode;
            if (!response.IsSuccessStatusCode)
            {
                var retryable = code is 408 or 429 || code >= 500;
                throw new ToolExecutionException($"http_{code}", $"{tool.Method} {Describe(request.RequestUri)} answered {code} {response.ReasonPhrase}: {Snippet(text)}", retryable);
            }

            if (string.IsNullOrWhiteSpace(text) || response.StatusCode == HttpStatusCode.NoContent)
            {
                return JsonElementFactory.EmptyObject;
            }

            try
            {
                return JsonElementFactory.Parse(text);
            }
            catch (JsonException)
            {
                throw new ToolExecutionException("malformed_response", $"{tool.Method} {Describe(request.RequestUri)} answered {code} with a body that is not JSON: {Snippet(text)}", retryable: true);
            }
        }
    }

    private static string Describe(Uri? uri) => uri is null ? "?" : uri.GetLeftPart(UriPartial.Path);

    private static string Snippet(string text)
    {
        var t = text.ReplaceLineEndings(" ").Trim();
        return t.Length <= 200 ? t : t[..200] + "…";
    }

    [GeneratedRegex(@"\{([A-Za-z_][A-Za-z0-9_]*)\}")]
    private static partial Regex Placeholder();
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
internal sealed partial class ToolJson : System.Text.Json.Serialization.JsonSerializerContext;
