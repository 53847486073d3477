using System.ClientModel;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace Ordo.Agents.Models;

/// <summary>
/// Turns what a provider's client threw into a <see cref="ModelCallException"/> of one of the <see cref="ModelErrors"/>
/// kinds, and says in one line what the provider answered: the HTTP status and the provider's own message (the
/// <c>error.message</c> of an OpenAI-style body, the <c>error</c> of an Ollama one, else the start of the body), never a
/// multi-line dump.
/// </summary>
internal static class ProviderErrors
{
    private const int MaxBody = 300;

    /// <summary>The failure a provider's exception stands for; null when it is not a provider failure (a bug of ours, say).</summary>
    public static ModelCallException? Classify(Exception e, TimeProvider time)
    {
        switch (e)
        {
            case ModelCallException known:
                return known;
            case ClientResultException { Status: > 0 } result:
            {
                var response = result.GetRawResponse();
                var retryAfter = response is null ? null : RetryAfter(Header(response, "retry-after-ms"), Header(response, "Retry-After"), time.GetUtcNow());
                return FromStatus(result.Status, response?.ReasonPhrase, BodyText(response), retryAfter, e);
            }
            case ProviderHttpException http:
                return FromStatus(http.Status, http.Reason, http.Body, RetryAfter(http.RetryAfterMs, http.RetryAfterHeader, time.GetUtcNow()), e);
            case ResponseTooLargeException:
                return new ModelCallException(ModelErrors.MalformedResponse, OneLine(e.Message), retryable: true, e);
        }

        // A connection that failed, or an answer that could not be read: the transport wraps it, often twice.
        for (var inner = e; inner is not null; inner = inner.InnerException)
        {
            switch (inner)
            {
                case ResponseTooLargeException:
                    return new ModelCallException(ModelErrors.MalformedResponse, OneLine(inner.Message), retryable: true, e);
                case HttpRequestException { StatusCode: { } status }:
                    return FromStatus((int)status, null, null, null, e);
                case HttpRequestException { HttpRequestError: HttpRequestError.InvalidResponse or HttpRequestError.ConfigurationLimitExceeded or HttpRequestError.UserAuthenticationError }:
                    return new ModelCallException(ModelErrors.MalformedResponse, $"the provider's answer is not valid HTTP: {OneLine(inner.Message)}", retryable: true, e);
                case HttpRequestException or SocketException or IOException:
                    return new ModelCallException(ModelErrors.ConnectionError, $"could not reach the provider: {OneLine(Innermost(inner).Message)}", retryable: true, e);
                case JsonException or FormatException or InvalidOperationException or ArgumentException or KeyNotFoundException or IndexOutOfRangeException or NullReferenceException or InvalidDataException:
                    return new ModelCallException(ModelErrors.MalformedResponse, $"the provider's answer could not be read: {OneLine(inner.Message)}", retryable: true, e);
            }
        }

        return null;
    }

    /// <summary>The failure an HTTP status stands for, with the provider's message.</summary>
    public static ModelCallException FromStatus(int status, string? reason, string? body, TimeSpan? retryAfter, Exception? inner)
    {
        var message = Describe(status, reason, body);
        return status switch
        {
            429 => new ModelCallException(ModelErrors.RateLimited, message, retryable: true, inner) { RetryAfter = retryAfter },
            408 => new ModelCallException(ModelErrors.Timeout, message, retryable: true, inner),
            >= 500 => new ModelCallException(ModelErrors.ServerError, message, retryable: true, inner) { RetryAfter = retryAfter },
            >= 400 => new ModelCallException(ModelErrors.ProviderRefused, message, retryable: false, inner),
            _ => new ModelCallException(ModelErrors.MalformedResponse, message, retryable: true, inner),
        };
    }

    /// <summary>One line: the status, its reason and the provider's message.</summary>
    public static string Describe(int status, string? reason, string? body)
    {
        var phrase = string.IsNullOrWhiteSpace(reason) ? ReasonOf(status) : reason.Trim();
        var text = BodyMessage(body);
        return $"the provider answered HTTP {status}{(phrase is null ? "" : " " + phrase)}{(text is null ? " with no error message" : $": {text}")}";
    }

    /// <summary>
    /// The delay a provider asks for: <c>retry-after-ms</c> (milliseconds, sent by OpenAI and Azure), else <c>Retry-After</c>
    /// in seconds or as an HTTP date. Null when neither is given or readable; never negative.
    /// </summary>
    public static TimeSpan? RetryAfter(string? milliseconds, string? value, DateTimeOffset now)
    {
        if (double.TryParse(milliseconds, NumberStyles.Float, CultureInfo.InvariantCulture, out var ms) && ms >= 0 && double.IsFinite(ms))
        {
            return TimeSpan.FromMilliseconds(Math.Min(ms, TimeSpan.FromDays(1).TotalMilliseconds));
        }

        if (string.IsNullOrWhiteSpace(value)) return null;
        var text = value.Trim();
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds >= 0 && double.IsFinite(seconds))
        {
            return TimeSpan.FromSeconds(Math.Min(seconds, TimeSpan.FromDays(1).TotalSeconds));
        }

        if (DateTimeOffset.TryParseExact(text, "r", CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var at)
            || DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out at))
        {
            var delta = at - now;
            return delta > TimeSpan.Zero ? delta : TimeSpan.Zero;
        }

        return null;
    }

    private static string? Header(System.ClientModel.Primitives.PipelineResponse response, string name)
        => response.Headers.TryGetValue(name, out var value) ? value : null;

    private static string? BodyText(System.ClientModel.Primitives.PipelineResponse? response)
    {
        try
        {
            return response?.Content?.ToString();
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    private static string? ReasonOf(int status)
    {
        var name = Enum.IsDefined(typeof(HttpStatusCode), status) ? ((HttpStatusCode)status).ToString() : null;
        if (name is null) return null;
        // InternalServerError → Internal Server Error, the phrase servers send.
        var words = new System.Text.StringBuilder();
        foreach (var c in name)
        {
            if (char.IsUpper(c) && words.Length > 0) words.Append(' ');
            words.Append(c);
        }

        return words.ToString();
    }

    private static string? BodyMessage(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        try
        {
            using var doc = JsonDocument.Parse(text);
            if (doc.RootElement.ValueKind == JsonValueKind.Object
                && doc.RootElement.TryGetProperty("error", out var error))
            {
                if (error.ValueKind == JsonValueKind.String) return Clip(error.GetString()!);
                if (error.ValueKind == JsonValueKind.Object && error.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String)
                {
                    return Clip(m.GetString()!);
                }
            }
        }
        catch (JsonException)
        {
            // Not JSON: the start of the body says enough.
        }

        return Clip(text);
    }

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is { } inner) e = inner;
        return e;
    }

    private static string Clip(string text)
    {
        var line = OneLine(text);
        return line.Length <= MaxBody ? line : line[..MaxBody] + "…";
    }

    internal static string OneLine(string text) => string.Join(' ', text.Split((char[])['\n', '\r', '\t', ' '], StringSplitOptions.RemoveEmptyEntries));
}
