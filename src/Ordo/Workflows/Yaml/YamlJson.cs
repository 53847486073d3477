using System.Text.Json;
using System.Text.Json.Nodes;

namespace Ordo.Workflows.Yaml;

/// <summary>Converts YAML values to JSON with YAML 1.2 core-schema typing of plain scalars.</summary>
internal static class YamlJson
{
    public static JsonNode? ToNode(YNode node) => node.Node switch
    {
        YamlDotNet.RepresentationModel.YamlMappingNode => ToObject(node),
        YamlDotNet.RepresentationModel.YamlSequenceNode => new JsonArray(node.Items().Select(ToNode).ToArray()),
        _ => ScalarToNode(node),
    };

    public static JsonElement ToElement(YNode node)
    {
        var n = ToNode(node);
        return n is null ? JsonElementFactory.Null : JsonSerializer.SerializeToElement(n, JsonElementFactory.NodeInfo);
    }

    public static JsonNode? ScalarToNode(YNode node)
    {
        if (node.IsNull) return null;
        if (node.TryGetBool(out var b)) return JsonValue.Create(b);
        if (node.TryGetLong(out var l)) return JsonValue.Create(l);
        if (node.TryGetDouble(out var d)) return JsonValue.Create(d);
        if (!node.IsQuoted && node.Scalar is ".inf" or ".Inf" or "-.inf" or ".nan" or ".NaN")
        {
            return JsonValue.Create(node.Scalar);
        }

        return JsonValue.Create(node.Scalar);
    }

    private static JsonObject ToObject(YNode node)
    {
        var o = new JsonObject();
        foreach (var (key, _, value) in node.Entries())
        {
            o[key] = ToNode(value);
        }

        return o;
    }
}
