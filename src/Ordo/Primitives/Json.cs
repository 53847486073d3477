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
}
