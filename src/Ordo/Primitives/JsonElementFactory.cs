using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Ordo;

/// <summary>Helpers for the immutable JSON values (<see cref="JsonElement"/>) that Ordo keeps in state and events.</summary>
public static class JsonElementFactory
{
    /// <summary>The JSON <c>null</c>.</summary>
    public static JsonElement Null { get; } = Parse("null");

    /// <summary>An empty JSON object.</summary>
    public static JsonElement EmptyObject { get; } = Parse("{}");

    /// <summary>An empty JSON array.</summary>
    public static JsonElement EmptyArray { get; } = Parse("[]");

    internal static JsonTypeInfo<JsonNode> NodeInfo => ValueJsonContext.Default.JsonNode;

    /// <summary>Parses JSON text into a standalone element.</summary>
    /// <exception cref="JsonException">The text is not JSON.</exception>
    public static JsonElement Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.Clone();
    }

    /// <summary>Parses UTF-8 JSON into a standalone element.</summary>
    public static JsonElement Parse(ReadOnlySpan<byte> utf8Json)
    {
        var reader = new Utf8JsonReader(utf8Json);
        return JsonElement.ParseValue(ref reader);
    }

    /// <summary>Converts a mutable node to an element (<c>null</c> for a null node).</summary>
    public static JsonElement FromNode(JsonNode? node)
        => node is null ? Null : JsonSerializer.SerializeToElement(node, NodeInfo);

    /// <summary>Compact JSON text of an element.</summary>
    public static string ToJson(this JsonElement element) => element.GetRawText();
}

[JsonSerializable(typeof(JsonNode))]
[JsonSerializable(typeof(JsonElement))]
internal sealed partial class ValueJsonContext : JsonSerializerContext;
