using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Ordo.Cli.Bench;

/// <summary>Reads numbers from benchmark JSON, whether it was built here (ints, longs, doubles) or parsed from the peer.</summary>
internal static class BenchJson
{
    /// <summary>The number at <paramref name="path"/> under <paramref name="node"/>, or null.</summary>
    public static double? Number(JsonNode? node, params string[] path)
    {
        foreach (var p in path)
        {
            node = node is JsonObject obj && obj.TryGetPropertyValue(p, out var v) ? v : null;
        }

        return node is JsonValue value && value.GetValueKind() == JsonValueKind.Number
            && double.TryParse(value.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null;
    }
}
