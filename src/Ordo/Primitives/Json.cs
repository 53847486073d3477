using System.Text.Json;
using System.Text.Json.Serialization;

namespace Ordo;

/// <summary>JSON helpers for code agents, tools and steps.</summary>
public static class Json
{
    /// <summary>The options Ordo serializes user objects with: snake_case names, nulls omitted.</summary>
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        TypeInfoResolver = new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver(),
    };

    /// <summary>Serializes any value to a JSON element.</summary>
    public static JsonElement Of<T>(T value) => JsonSerializer.SerializeToElement(value, Options);

    /// <summary>
    /// What a JSON parse error says, for people: the reader's first sentence, without the position it appends (the
    /// caller gives the line and column) and without its advice on reader options.
    /// </summary>
    public static string Describe(JsonException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        var text = e.Message;
        foreach (var tail in new[] { " LineNumber:", " Change the reader options.", " Path: $" })
        {
            var at = text.IndexOf(tail, StringComparison.Ordinal);
            if (at >= 0) text = text[..at];
        }

        return text.Trim();
    }
}
