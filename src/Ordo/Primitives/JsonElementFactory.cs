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

    /// <summary>
    /// Decodes text strictly: UTF-8 (an optional byte order mark is dropped) in which every byte sequence is valid.
    /// Nothing is silently replaced by U+FFFD.
    /// </summary>
    /// <exception cref="FormatException">The bytes are not UTF-8; the message says at which byte.</exception>
    public static string DecodeUtf8(ReadOnlySpan<byte> bytes)
    {
        if (bytes.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) bytes = bytes[3..];
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (System.Text.DecoderFallbackException e)
        {
            throw new FormatException($"the text is not valid UTF-8 (byte {e.Index + 1} cannot be decoded)", e);
        }
    }

    private static readonly System.Text.UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// The JSON path of the first string (a value or a property name) that is not valid Unicode text — an escaped lone
    /// surrogate such as <c>"\ud800"</c> — or null when every string is text.
    /// </summary>
    public static string? FindInvalidString(JsonElement value, string path = "$")
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.String:
                return IsText(value) ? null : path;
            case JsonValueKind.Array:
                var i = 0;
                foreach (var item in value.EnumerateArray())
                {
                    if (FindInvalidString(item, $"{path}[{i++}]") is { } bad) return bad;
                }

                return null;
            case JsonValueKind.Object:
                foreach (var p in value.EnumerateObject())
                {
                    string name;
                    try
                    {
                        name = p.Name;
                    }
                    catch (InvalidOperationException)
                    {
                        return $"{path} (a property name)";
                    }

                    if (!IsWellFormed(name)) return $"{path} (the property name '{name.Replace('\uFFFD', '?')}')";
                    if (FindInvalidString(p.Value, $"{path}.{name}") is { } bad) return bad;
                }

                return null;
            default:
                return null;
        }
    }

    /// <summary>
    /// The first value a strict reader refuses although JSON's grammar allows it, as (path, what is wrong): a property
    /// name that appears twice in one object (receivers disagree on which one counts), or a number outside the range of a
    /// double (<c>1e400</c>, <c>-1e400</c>: it would silently become infinity or null). Null when there is none.
    /// </summary>
    public static (string Path, string Problem)? FindAmbiguity(JsonElement value, string path = "$")
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Number:
                return value.TryGetDouble(out var d) && double.IsFinite(d)
                    ? null
                    : (path, $"the number {(value.GetRawText() is { Length: <= 40 } raw ? raw : value.GetRawText()[..40] + "…")} is out of range (numbers must fit in a double)");
            case JsonValueKind.Array:
                var i = 0;
                foreach (var item in value.EnumerateArray())
                {
                    if (FindAmbiguity(item, $"{path}[{i++}]") is { } bad) return bad;
                }

                return null;
            case JsonValueKind.Object:
                var seen = new HashSet<string>(StringComparer.Ordinal);
                foreach (var p in value.EnumerateObject())
                {
                    if (!seen.Add(p.Name)) return ($"{path}.{p.Name}", $"the property '{p.Name}' appears more than once in one object");
                    if (FindAmbiguity(p.Value, $"{path}.{p.Name}") is { } bad) return bad;
                }

                return null;
            default:
                return null;
        }
    }

    private static bool IsText(JsonElement s)
    {
        try
        {
            return IsWellFormed(s.GetString()!);
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>Whether every surrogate of a string is half of a pair.</summary>
    private static bool IsWellFormed(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) i++;
            else if (char.IsSurrogate(text[i])) return false;
        }

        return true;
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
