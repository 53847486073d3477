using System.ClientModel;
using System.Text.Json;

namespace Ordo.Agents.Models;

/// <summary>
/// Says in one line what a model provider answered when a call failed: the HTTP status and the provider's own message
/// (the <c>error.message</c> of an OpenAI-style body, else the start of the body), never a multi-line dump.
/// </summary>
internal static class ProviderErrors
{
    private const int MaxBody = 300;

    public static string Describe(Exception e)
    {
        if (e is ClientResultException { Status: > 0 } result)
        {
            var response = result.GetRawResponse();
            var reason = string.IsNullOrWhiteSpace(response?.ReasonPhrase) ? "" : " " + response!.ReasonPhrase.Trim();
            var body = BodyMessage(response);
            return $"the provider answered HTTP {result.Status}{reason}{(body is null ? " with no error message" : $": {body}")}";
        }

        return OneLine(e.Message);
    }

    /// <summary>Whether the provider refused the request itself (4xx other than 408 and 429): trying again would be refused the same way.</summary>
    public static bool IsRefusal(Exception e) => e is ClientResultException { Status: >= 400 and < 500 and not 408 and not 429 };

    private static string? BodyMessage(System.ClientModel.Primitives.PipelineResponse? response)
    {
        string text;
        try
        {
            text = response?.Content?.ToString() ?? "";
        }
        catch (InvalidOperationException)
        {
            return null;
        }

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

    private static string Clip(string text)
    {
        var line = OneLine(text);
        return line.Length <= MaxBody ? line : line[..MaxBody] + "…";
    }

    private static string OneLine(string text) => string.Join(' ', text.Split((char[])['\n', '\r', '\t', ' '], StringSplitOptions.RemoveEmptyEntries));
}
