using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Ordo.Tools;

/// <summary>
/// Runs <c>http</c> tools. <c>{field}</c> placeholders in the URL take argument values (URL-encoded; a value that would
/// make a path segment <c>.</c>, <c>..</c> or empty is refused); the other arguments are the JSON body (POST, PUT, PATCH)
/// or the query string (GET, DELETE). Headers may hold <c>${secret:NAME}</c>. The idempotency key is sent as
/// <c>Idempotency-Key</c>. The result is the response body parsed as JSON, at most <see cref="ToolDefinition.MaxResponseBytes"/>
/// long. 408, 429 and 5xx answers, timeouts and connection failures are retryable; other 4xx are not.
/// </summary>
/// <remarks>
/// Redirects are followed here, hop by hop, as the tool's <see cref="ToolDefinition.Redirects"/> allows (at most
/// <see cref="MaxRedirects"/>); secret headers are sent only to the URL's own origin. Every hop is checked against the
/// tool's address rules (link-local and cloud metadata addresses are refused unless in
/// <see cref="ToolDefinition.AllowAddresses"/>): by its literal address or name before anything is sent and, on the
/// executor's own connections, on every resolved address when the connection is made. Thread-safe.
/// </remarks>
public sealed partial class HttpToolExecutor : IToolExecutor, IDisposable
{
    /// <summary>The most redirects one call follows.</summary>
    public const int MaxRedirects = 5;

    /// <summary>How much of an error answer is read (to quote its start in the error).</summary>
    private const int ErrorBodyBytes = 4096;

    private static readonly HashSet<string> CredentialHeaders = new(StringComparer.OrdinalIgnoreCase) { "Authorization", "Cookie", "Proxy-Authorization" };

    private readonly HttpClient? _client;
    private readonly IHttpClientFactory? _clients;
    private readonly HttpToolClientFactory? _ownClients;
    private readonly Func<string, CancellationToken, Task<IPAddress[]>>? _resolve;

    /// <summary>
    /// Creates the executor with connections of its own, which follow no redirect by themselves, keep no cookies and
    /// check every address a host name resolves to when they connect.
    /// </summary>
    /// <param name="resolveHost">Resolves a host name to its addresses; null uses DNS.</param>
    public HttpToolExecutor(Func<string, CancellationToken, Task<IPAddress[]>>? resolveHost = null)
    {
        _resolve = resolveHost;
        _ownClients = new HttpToolClientFactory(resolveHost);
        _clients = _ownClients;
    }

    /// <summary>
    /// Creates the executor over the <c>ordo-tools</c> client of a container's factory, whose connections
    /// <c>AddOrdoHttpClients</c> registered: the same as the executor's own connections, shared by the process.
    /// </summary>
    internal HttpToolExecutor(IHttpClientFactory clients) => _clients = clients ?? throw new ArgumentNullException(nameof(clients));

    /// <summary>
    /// Creates the executor over a client the host gives. Redirects and the address rules are still applied to every
    /// URL requested (a host name is resolved and checked before the request), but what the client's handler does
    /// after that — following redirects itself, resolving the name again when it connects — is up to the host.
    /// </summary>
    public HttpToolExecutor(HttpClient http) => _client = http ?? throw new ArgumentNullException(nameof(http));

    /// <inheritdoc />
    public string Kind => "http";

    /// <inheritdoc />
    public void Dispose() => _ownClients?.Dispose();

    /// <inheritdoc />
    public async ValueTask<JsonElement> ExecuteAsync(ToolInvocation invocation, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(invocation);
        var tool = invocation.Tool;
        var args = invocation.Args.ValueKind == JsonValueKind.Object ? invocation.Args : JsonElementFactory.EmptyObject;
        HttpAddressRules rules;
        try
        {
            rules = HttpAddressRules.For(tool.AllowAddresses);
        }
        catch (FormatException e)
        {
            throw new ToolExecutionException("config_error", $"tool '{tool.Name}': allow_addresses: {e.Message}", retryable: false, e);
        }

        var used = new HashSet<string>(StringComparer.Ordinal);
        var url = Resolve(invocation, FillUrl(tool.Url!, args, used));
        var method = new HttpMethod(tool.Method);
        var rest = args.EnumerateObject().Where(p => !used.Contains(p.Name)).ToList();
        string? body = null;
        if (method == HttpMethod.Get || method == HttpMethod.Delete)
        {
            if (rest.Count > 0)
            {
                var query = string.Join('&', rest.Select(p => $"{Uri.EscapeDataString(p.Name)}={Uri.EscapeDataString(p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText())}"));
                url += (url.Contains('?', StringComparison.Ordinal) ? "&" : "?") + query;
            }
        }
        else
        {
            var json = new StringBuilder("{");
            foreach (var p in rest)
            {
                if (json.Length > 1) json.Append(',');
                json.Append(JsonSerializer.Serialize(p.Name, ToolJson.Default.String)).Append(':').Append(p.Value.GetRawText());
            }

            body = json.Append('}').ToString();
        }

        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new ToolExecutionException("config_error", $"tool '{tool.Name}': the URL is not an absolute http or https URL", retryable: false);
        }

        var headers = new List<(string Name, string Value, bool Sensitive)>();
        foreach (var (name, raw) in tool.Headers)
        {
            headers.Add((name, Resolve(invocation, raw), Gateway.SecretResolver.HasReference(raw) || CredentialHeaders.Contains(name)));
        }

        var origin = uri;
        for (var hop = 0; ; hop++)
        {
            await CheckAddressAsync(tool, rules, method, uri, cancellationToken).ConfigureAwait(false);
            var sameOrigin = SameOrigin(uri, origin);
            using var request = new HttpRequestMessage(method, uri);
            if (body is not null)
            {
                request.Content = new StringContent(body, Encoding.UTF8, "application/json");
            }

            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            request.Headers.TryAddWithoutValidation("Idempotency-Key", invocation.IdempotencyKey);
            request.Headers.TryAddWithoutValidation("X-Ordo-Job", invocation.JobId.Value);
            foreach (var (name, value, sensitive) in headers)
            {
                // Secrets and credentials are for the origin they were configured for, never for one a redirect names.
                if (sensitive && !sameOrigin) continue;
                if (!request.Headers.TryAddWithoutValidation(name, value))
                {
                    request.Content?.Headers.TryAddWithoutValidation(name, value);
                }
            }

            using var response = await SendAsync(tool, rules, request, cancellationToken).ConfigureAwait(false);
            var code = (int)response.StatusCode;
            if (code is 301 or 302 or 303 or 307 or 308 && response.Headers.Location is { } location)
            {
                if (tool.Redirects == HttpRedirects.None)
                {
                    throw new ToolExecutionException($"http_{code}", $"{method} {Describe(uri)} answered {code} {response.ReasonPhrase} (a redirect to {Describe(Target(uri, location))}); tool '{tool.Name}' follows no redirects (redirects: none)", retryable: false);
                }

                var target = Target(uri, location);
                if (target is null || (target.Scheme != Uri.UriSchemeHttp && target.Scheme != Uri.UriSchemeHttps))
                {
                    throw new ToolExecutionException("redirect_refused", $"{method} {Describe(uri)} answered {code} with a Location that is not an http or https URL", retryable: false);
                }

                if (hop == MaxRedirects)
                {
                    throw new ToolExecutionException("too_many_redirects", $"{tool.Method} {Describe(origin)} was redirected more than {MaxRedirects} times (last to {Describe(target)})", retryable: false);
                }

                if (uri.Scheme == Uri.UriSchemeHttps && target.Scheme == Uri.UriSchemeHttp)
                {
                    throw new ToolExecutionException("redirect_refused", $"{method} {Describe(uri)} was redirected ({code}) from https to http ({Origin(target)}); a redirect never leaves https", retryable: false);
                }

                if (!SameOrigin(target, origin) && tool.Redirects != HttpRedirects.Any)
                {
                    throw new ToolExecutionException("redirect_refused",
                        $"{method} {Describe(uri)} was redirected ({code}) to another origin, {Origin(target)}; tool '{tool.Name}' follows redirects only within {Origin(origin)} " +
                        "(set redirects: any on the tool to follow them; its secret headers are not sent to another origin)", retryable: false);
                }

                // The method as browsers and .NET rewrite it: 303 becomes GET; 301 and 302 turn a POST into a GET; 307 and 308 keep both.
                if ((code == 303 && method != HttpMethod.Head) || (code is 301 or 302 && method == HttpMethod.Post))
                {
                    method = HttpMethod.Get;
                    body = null;
                }

                uri = target;
                continue;
            }

            return await ReadAnswerAsync(tool, method, uri, response, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Sends one request on the connections of http tools for these rules, or on the host's client.</summary>
    private async Task<HttpResponseMessage> SendAsync(ToolDefinition tool, HttpAddressRules rules, HttpRequestMessage request, CancellationToken cancellationToken)
    {
        try
        {
            if (_client is not null)
            {
                return await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            }

            // The connections are chosen by the tool's allowlist: one made under one tool's allowlist is never reused by a tool without it.
            request.Options.Set(HttpToolConnections.Rules, rules);
            // A factory's client is cheap and needs no disposing: its handler, which holds the connections, outlives it.
            var client = _clients!.CreateClient(HttpToolConnections.ClientName);
            return await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e) when (Find<AddressRefusedException>(e) is { } refused)
        {
            throw Refused(tool, request.Method, request.RequestUri!, refused.Message, e);
        }
        catch (HttpRequestException e) when (e.HttpRequestError == HttpRequestError.ConfigurationLimitExceeded)
        {
            throw new ToolExecutionException("response_too_large", $"{request.Method} {Describe(request.RequestUri)}: the answer's headers are longer than {HttpToolConnections.MaxResponseHeadersKiB} KiB", retryable: false, e);
        }
        catch (HttpRequestException e)
        {
            throw new ToolExecutionException("connection_error", $"{request.Method} {Describe(request.RequestUri)}: {e.Message}", retryable: true, e);
        }
    }

    /// <summary>
    /// Refuses a URL whose host is a refused address or name, before anything is sent. When the connection is not the
    /// executor's own (the host's client) or goes through a proxy, the name is also resolved here and every address checked.
    /// </summary>
    private async Task CheckAddressAsync(ToolDefinition tool, HttpAddressRules rules, HttpMethod method, Uri uri, CancellationToken cancellationToken)
    {
        var host = uri.IdnHost;
        // An IPv6 literal may carry a zone (fe80::1%25eth0): the address is what is checked.
        if (IPAddress.TryParse(host, out var literal) || (host.Contains(':', StringComparison.Ordinal) && IPAddress.TryParse(host.Split('%')[0], out literal)))
        {
            if (rules.Refusal(literal) is { } why) throw Refused(tool, method, uri, $"{host} is {why}");
            return;
        }

        if (rules.Refusal(host) is { } named)
        {
            throw Refused(tool, method, uri, $"{host} is {named}");
        }

        if (_client is null && !Proxied(uri)) return;
        IPAddress[] addresses;
        try
        {
            addresses = await (_resolve ?? Dns.GetHostAddressesAsync)(host, cancellationToken).ConfigureAwait(false);
        }
        catch (System.Net.Sockets.SocketException)
        {
            return; // Unresolvable here: the request fails (or the proxy resolves it) as it would have.
        }

        foreach (var address in addresses)
        {
            if (rules.Refusal(address) is { } why) throw Refused(tool, method, uri, $"{host} ({address}) is {why}");
        }
    }

    private static bool Proxied(Uri uri)
    {
        var proxy = HttpClient.DefaultProxy;
        return !proxy.IsBypassed(uri) && proxy.GetProxy(uri) is { } via && via != uri;
    }

    private static ToolExecutionException Refused(ToolDefinition tool, HttpMethod method, Uri uri, string what, Exception? inner = null)
        => new("address_refused",
            $"{method} {Describe(uri)} refused before connecting: {what}; tool '{tool.Name}' may reach it only if allow_addresses lists it",
            retryable: false, inner);

    /// <summary>Reads the answer, at most the tool's limit, and makes the result or the error of it.</summary>
    private static async Task<JsonElement> ReadAnswerAsync(ToolDefinition tool, HttpMethod method, Uri uri, HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var code = (int)response.StatusCode;
        if (!response.IsSuccessStatusCode)
        {
            // Only the start of an error answer is read: it is quoted, not used.
            var (start, _) = await ReadAtMostAsync(response.Content, ErrorBodyBytes, cancellationToken).ConfigureAwait(false);
            var retryable = code is 408 or 429 || code >= 500;
            var hint = code is 301 or 302 or 303 or 307 or 308 ? " (a redirect without a Location)" : "";
            throw new ToolExecutionException($"http_{code}", $"{method} {Describe(uri)} answered {code} {response.ReasonPhrase}{hint}: {Snippet(Decode(start, response.Content))}", retryable);
        }

        var limit = tool.MaxResponseBytes;
        if (response.Content.Headers.ContentLength is { } announced && announced > limit)
        {
            throw TooLarge(tool, method, uri, $"announced {announced.ToString(CultureInfo.InvariantCulture)} bytes");
        }

        var (bytes, over) = await ReadAtMostAsync(response.Content, limit, cancellationToken).ConfigureAwait(false);
        if (over)
        {
            throw TooLarge(tool, method, uri, $"sent more than {limit.ToString(CultureInfo.InvariantCulture)} bytes");
        }

        var text = Decode(bytes, response.Content);
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
            throw new ToolExecutionException("malformed_response", $"{method} {Describe(uri)} answered {code} with a body that is not JSON: {Snippet(text)}", retryable: true);
        }
    }

    private static ToolExecutionException TooLarge(ToolDefinition tool, HttpMethod method, Uri uri, string what)
        => new("response_too_large",
            $"{method} {Describe(uri)} {what}: the answer is larger than tool '{tool.Name}' accepts (max_response_bytes: {tool.MaxResponseBytes.ToString(CultureInfo.InvariantCulture)}); " +
            "it was not read further. Raise max_response_bytes on the tool if such answers are expected", retryable: false);

    /// <summary>Reads a body up to <paramref name="limit"/> bytes; <c>Over</c> says there was more (which is not read).</summary>
    private static async Task<(ArraySegment<byte> Bytes, bool Over)> ReadAtMostAsync(HttpContent content, long limit, CancellationToken cancellationToken)
    {
        var stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            var buffer = new MemoryStream(capacity: (int)Math.Min(limit + 1, content.Headers.ContentLength is { } n ? n + 1 : 16 * 1024));
            var chunk = new byte[(int)Math.Min(81920, limit + 1)];
            while (true)
            {
                var want = (int)Math.Min(chunk.Length, limit + 1 - buffer.Length);
                var read = await stream.ReadAsync(chunk.AsMemory(0, want), cancellationToken).ConfigureAwait(false);
                if (read == 0) break;
                buffer.Write(chunk, 0, read);
                if (buffer.Length > limit)
                {
                    return (new ArraySegment<byte>(buffer.GetBuffer(), 0, (int)limit), true);
                }
            }

            return (new ArraySegment<byte>(buffer.GetBuffer(), 0, (int)buffer.Length), false);
        }
    }

    /// <summary>Decodes a body by the charset of its Content-Type (UTF-8 when there is none or it is unknown).</summary>
    private static string Decode(ReadOnlySpan<byte> bytes, HttpContent content)
    {
        var encoding = Encoding.UTF8;
        if (content.Headers.ContentType?.CharSet is { Length: > 0 } charset)
        {
            try
            {
                encoding = Encoding.GetEncoding(charset.Trim('"'));
            }
            catch (ArgumentException)
            {
                // An unknown charset: read as UTF-8, as before.
            }
        }

        var preamble = encoding.Preamble;
        if (preamble.Length > 0 && bytes.StartsWith(preamble)) bytes = bytes[preamble.Length..];
        return encoding.GetString(bytes);
    }

    /// <summary>
    /// Fills the URL's placeholders with URL-encoded argument values. A value that makes a path segment <c>.</c>,
    /// <c>..</c> (also written <c>%2e</c>) or empty is refused: it would move the request to another path.
    /// </summary>
    private static string FillUrl(string template, JsonElement args, HashSet<string> used)
    {
        var authority = template.IndexOf("://", StringComparison.Ordinal);
        var pathStart = authority < 0 ? 0 : template.IndexOf('/', authority + 3);
        var pathEnd = template.IndexOfAny(['?', '#'], Math.Max(pathStart, 0));
        if (pathStart < 0) pathStart = pathEnd < 0 ? template.Length : pathEnd;
        if (pathEnd < 0) pathEnd = template.Length;

        string Fill(string part, List<string>? names) => Placeholder().Replace(part, m =>
        {
            var name = m.Groups[1].Value;
            used.Add(name);
            names?.Add(name);
            if (!args.TryGetProperty(name, out var v) || v.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
            {
                throw new ToolExecutionException("invalid_args", $"the URL needs argument '{name}'", retryable: false);
            }

            return Uri.EscapeDataString(v.ValueKind == JsonValueKind.String ? v.GetString()! : v.GetRawText());
        });

        var result = new StringBuilder(Fill(template[..pathStart], null));
        var segments = template[pathStart..pathEnd].Split('/');
        for (var i = 0; i < segments.Length; i++)
        {
            if (i > 0) result.Append('/');
            var names = new List<string>();
            var filled = Fill(segments[i], names);
            if (names.Count > 0 && Uri.UnescapeDataString(filled) is "" or "." or "..")
            {
                var which = string.Join(", ", names.Distinct(StringComparer.Ordinal).Select(n => $"'{n}'"));
                throw new ToolExecutionException("invalid_args",
                    $"argument {which} would make the URL path segment '{segments[i]}' {(filled.Length == 0 ? "empty" : $"'{filled}'")}, which moves the request to another path; a path argument cannot be '.', '..' or empty",
                    retryable: false);
            }

            result.Append(filled);
        }

        return result.Append(Fill(template[pathEnd..], null)).ToString();
    }

    private static string Resolve(ToolInvocation invocation, string text)
    {
        try
        {
            return invocation.Secrets.Resolve(text);
        }
        catch (Gateway.SecretNotFoundException e)
        {
            throw new ToolExecutionException("config_error", e.Message, retryable: false, e);
        }
    }

    private static Uri? Target(Uri from, Uri location) => location.IsAbsoluteUri ? location : Uri.TryCreate(from, location, out var t) ? t : null;

    private static bool SameOrigin(Uri a, Uri b)
        => string.Equals(a.Scheme, b.Scheme, StringComparison.OrdinalIgnoreCase) && string.Equals(a.IdnHost, b.IdnHost, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;

    private static string Origin(Uri uri) => uri.GetLeftPart(UriPartial.Authority);

    private static T? Find<T>(Exception? e) where T : Exception
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is T t) return t;
        }

        return null;
    }

    private static string Describe(Uri? uri) => uri is null || !uri.IsAbsoluteUri ? "?" : uri.GetLeftPart(UriPartial.Path);

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
