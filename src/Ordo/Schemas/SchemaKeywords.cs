using System.Text.Json;
using System.Text.Json.Nodes;

namespace Ordo.Schemas;

/// <summary>
/// Keeps a contract from promising what its checks do not enforce: the schema's <c>const</c> is checked as the
/// equivalent one-value <c>enum</c>, and a keyword the checks would silently ignore (<c>if</c>, <c>contains</c>,
/// <c>propertyNames</c>...) is refused, named with where it is, instead of letting values through that it excludes.
/// </summary>
internal static class SchemaKeywords
{
    /// <summary>Keywords of later drafts that the contract checks do not enforce, with what to write instead.</summary>
    private static readonly Dictionary<string, string> NotEnforced = new(StringComparer.Ordinal)
    {
        ["if"] = "express the condition with oneOf/anyOf",
        ["then"] = "express the condition with oneOf/anyOf",
        ["else"] = "express the condition with oneOf/anyOf",
        ["contains"] = "check the items with items",
        ["minContains"] = "check the items with items",
        ["maxContains"] = "check the items with items",
        ["dependentRequired"] = "use dependencies: { NAME: [ ... ] }",
        ["dependentSchemas"] = "use dependencies: { NAME: { ... } }",
        ["propertyNames"] = "use patternProperties with additionalProperties: false",
        ["unevaluatedProperties"] = "use additionalProperties",
        ["unevaluatedItems"] = "use additionalItems",
        ["prefixItems"] = "use items: [ ... ] with additionalItems",
        ["$dynamicRef"] = "use $ref",
        ["$recursiveRef"] = "use $ref",
    };

    /// <summary>Keywords whose value maps names to schemas.</summary>
    private static readonly string[] SchemaMaps = ["properties", "patternProperties", "definitions", "$defs", "dependencies"];

    /// <summary>Keywords whose value is a schema, or a list of schemas.</summary>
    private static readonly string[] Subschemas = ["items", "additionalItems", "additionalProperties", "not", "allOf", "anyOf", "oneOf"];

    /// <summary>The schema text as the checks should read it.</summary>
    /// <exception cref="InvalidDataException">The schema uses a keyword the checks do not enforce.</exception>
    public static string Prepare(string json)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { MaxDepth = 256 });
        }
        catch (JsonException)
        {
            // Left to the schema library, which reports where the JSON is broken.
            return json;
        }

        return Visit(root, "$") ? root!.ToJsonString() : json;
    }

    /// <summary>Checks a schema and those inside it; true when one was rewritten.</summary>
    private static bool Visit(JsonNode? node, string path)
    {
        if (node is not JsonObject schema) return false;
        var changed = false;
        foreach (var (key, value) in schema.ToList())
        {
            var at = $"{path}.{key}";
            if (NotEnforced.TryGetValue(key, out var instead))
            {
                throw new InvalidDataException($"invalid JSON Schema: '{key}' at {at} is not enforced by Ordo's contract checks, and values it excludes would pass; {instead}");
            }

            if (SchemaMaps.Contains(key, StringComparer.Ordinal) && value is JsonObject map)
            {
                foreach (var (name, sub) in map.ToList()) changed |= Visit(sub, $"{at}.{name}");
            }
            else if (Subschemas.Contains(key, StringComparer.Ordinal))
            {
                if (value is JsonArray list)
                {
                    for (var i = 0; i < list.Count; i++) changed |= Visit(list[i], $"{at}[{i}]");
                }
                else
                {
                    changed |= Visit(value, at);
                }
            }
        }

        if (schema.TryGetPropertyValue("const", out var constant))
        {
            if (schema.ContainsKey("enum"))
            {
                throw new InvalidDataException($"invalid JSON Schema: {path} has both 'const' and 'enum'; keep one");
            }

            // The same constraint, in the form the checks enforce.
            schema.Remove("const");
            schema["enum"] = new JsonArray(constant?.DeepClone());
            changed = true;
        }

        return changed;
    }
}
