using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Ordo.Server.Auth;

namespace Ordo.Server.Api;

/// <summary>What an API request carries once it is authenticated: the caller and the body, read within the limit.</summary>
internal static class ApiContext
{
    private const string CallerKey = "ordo.caller";

    public static void SetCaller(HttpContext http, ApiCaller caller) => http.Items[CallerKey] = caller;

    public static ApiCaller Caller(HttpContext http) => (ApiCaller)http.Items[CallerKey]!;

    /// <summary>How often a long-lived stream checks that its key is still valid (<see cref="OrdoServerOptions.StreamKeyRecheck"/>).</summary>
    public static TimeSpan RecheckEvery(HttpContext http) => http.RequestServices.GetRequiredService<Microsoft.Extensions.Options.IOptions<OrdoServerOptions>>().Value.StreamKeyRecheck;

    /// <summary>
    /// Whether the key a stream was opened with still authenticates as the same caller: a stream ends soon after its
    /// key is revoked (or its identity loses its roles), instead of living as long as the job.
    /// </summary>
    public static async ValueTask<bool> StillAuthorizedAsync(HttpContext http, CancellationToken cancellationToken)
    {
        var header = http.Request.Headers.Authorization.ToString();
        if (header.Length <= 7) return false;
        var now = await http.RequestServices.GetRequiredService<ApiKeyAuthenticator>().AuthenticateAsync(header[7..].Trim(), cancellationToken).ConfigureAwait(false);
        var then = Caller(http);
        return now is not null && now.Tenant == then.Tenant && now.Identity == then.Identity && now.Roles.SetEquals(then.Roles);
    }

    /// <summary>Reads a JSON object body of at most <paramref name="limit"/> bytes; an empty body is an empty object.</summary>
    /// <exception cref="RequestTooLargeException">The body is larger than the limit.</exception>
    /// <exception cref="InvalidBodyException">The body is not a JSON object.</exception>
    public static async Task<JsonElement> ReadObjectAsync(HttpContext http, int limit)
    {
        if (http.Request.ContentLength > limit) throw new RequestTooLargeException();
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await http.Request.Body.ReadAsync(chunk, http.RequestAborted).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + read > limit) throw new RequestTooLargeException();
            buffer.Write(chunk, 0, read);
        }

        if (buffer.Length == 0) return JsonElementFactory.EmptyObject;
        JsonElement value;
        try
        {
            // Text first: bytes that are not UTF-8 are refused, never replaced.
            JsonElementFactory.DecodeUtf8(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
            using var doc = JsonDocument.Parse(buffer.ToArray());
            value = doc.RootElement.Clone();
        }
        catch (FormatException e)
        {
            throw new InvalidBodyException("$", "the body is not " + e.Message.Replace("the text is not ", "", StringComparison.Ordinal));
        }
        catch (JsonException e)
        {
            throw new InvalidBodyException("$", "the body is not valid JSON: " + e.Message);
        }

        if (value.ValueKind != JsonValueKind.Object) throw new InvalidBodyException("$", "the body must be a JSON object");
        if (JsonElementFactory.FindInvalidString(value) is { } invalid) throw new InvalidBodyException(invalid, "the string is not valid Unicode text (a lone surrogate)");
        if (JsonElementFactory.FindAmbiguity(value) is { } ambiguous) throw new InvalidBodyException(ambiguous.Path, ambiguous.Problem);
        return value;
    }

    /// <summary>An optional text of a body (such as a reason): a string or null of at most <paramref name="maxText"/> characters.</summary>
    /// <exception cref="InvalidBodyException">A property is unknown, not a string, or too long.</exception>
    public static string? Text(JsonElement body, string name, int maxText = 2000)
    {
        if (!body.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.String) throw new InvalidBodyException("$." + name, $"the {name} must be a string");
        var text = value.GetString()!;
        return text.Length <= maxText ? text : throw new InvalidBodyException("$." + name, $"the {name} is longer than {maxText} characters");
    }

    /// <summary>Refuses a property that is not one of <paramref name="allowed"/>.</summary>
    /// <exception cref="InvalidBodyException">The first unknown property.</exception>
    public static void Only(JsonElement body, params string[] allowed)
    {
        foreach (var p in body.EnumerateObject())
        {
            if (Array.IndexOf(allowed, p.Name) < 0) throw new InvalidBodyException(Problems.Path("$", p.Name), $"unknown property (this body takes {string.Join(", ", allowed)})");
        }
    }
}

/// <summary>The request body is over the limit (413).</summary>
internal sealed class RequestTooLargeException : Exception;

/// <summary>The request is invalid (400); <see cref="Path"/> is the JSON path (or the parameter) at fault.</summary>
internal sealed class InvalidBodyException(string path, string message) : Exception(message)
{
    public string Path { get; } = path;
}
