using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Ordo.Server.Auth;

namespace Ordo.Server.Api;

/// <summary>What an API request carries once it is authenticated: the caller and the body, read within the limit.</summary>
internal static class ApiContext
{
    private const string CallerKey = "ordo.caller";

    public static void SetCaller(HttpContext http, ApiCaller caller) => http.Items[CallerKey] = caller;

    public static ApiCaller Caller(HttpContext http) => (ApiCaller)http.Items[CallerKey]!;

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
            using var doc = JsonDocument.Parse(buffer.ToArray());
            value = doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new InvalidBodyException("$", "the body is not valid JSON: " + e.Message);
        }

        return value.ValueKind == JsonValueKind.Object ? value : throw new InvalidBodyException("$", "the body must be a JSON object");
    }
}

/// <summary>The request body is over the limit (413).</summary>
internal sealed class RequestTooLargeException : Exception;

/// <summary>The request is invalid (400); <see cref="Path"/> is the JSON path (or the parameter) at fault.</summary>
internal sealed class InvalidBodyException(string path, string message) : Exception(message)
{
    public string Path { get; } = path;
}
