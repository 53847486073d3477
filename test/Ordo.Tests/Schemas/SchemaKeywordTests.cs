using System.Text.Json;
using Ordo.Schemas;

namespace Ordo.Tests.Schemas;

/// <summary>A contract enforces what its schema says, or refuses the schema: no keyword is silently ignored.</summary>
public sealed class SchemaKeywordTests
{
    private static IReadOnlyList<string> Check(string schema, string value)
        => JsonSchemaContract.FromJson(schema).Validate(JsonDocument.Parse(value).RootElement.Clone());

    [Fact]
    public void Const_IsEnforced_AtAnyDepth()
    {
        const string schema = """
            { "type": "object", "properties": { "ok": { "type": "boolean", "const": true },
              "mode": { "anyOf": [ { "const": "safe" }, { "const": "slow" } ] },
              "tags": { "type": "array", "items": { "const": "a" } } } }
            """;

        Assert.Empty(Check(schema, """{ "ok": true, "mode": "slow", "tags": ["a", "a"] }"""));
        Assert.NotEmpty(Check(schema, """{ "ok": false }"""));
        Assert.NotEmpty(Check(schema, """{ "mode": "danger" }"""));
        Assert.NotEmpty(Check(schema, """{ "tags": ["a", "b"] }"""));
        Assert.NotEmpty(Check("""{ "const": { "a": [1, null] } }""", """{ "a": [1] }"""));
        Assert.Empty(Check("""{ "const": { "a": [1, null] } }""", """{ "a": [1, null] }"""));
    }

    [Theory]
    [InlineData("""{ "if": { "required": ["a"] }, "then": { "required": ["b"] } }""", "'if' at $.if")]
    [InlineData("""{ "type": "array", "contains": { "const": 1 } }""", "'contains' at $.contains")]
    [InlineData("""{ "properties": { "x": { "dependentRequired": { "a": ["b"] } } } }""", "'dependentRequired' at $.properties.x.dependentRequired")]
    [InlineData("""{ "propertyNames": { "pattern": "^[a-z]+$" } }""", "'propertyNames' at $.propertyNames")]
    [InlineData("""{ "allOf": [ {}, { "unevaluatedProperties": false } ] }""", "'unevaluatedProperties' at $.allOf[1].unevaluatedProperties")]
    [InlineData("""{ "const": 1, "enum": [1, 2] }""", "both 'const' and 'enum'")]
    public void AKeywordTheChecksWouldIgnore_IsRefusedWhereItIs(string schema, string message)
    {
        var e = Assert.Throws<InvalidDataException>(() => JsonSchemaContract.FromJson(schema));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AKeywordTheChecksWouldIgnore_InAFileReferencedByAReferencedFile_IsNamedWithItsFile()
    {
        var dir = Path.Combine(Path.GetTempPath(), "ordo-schemas");
        var files = new Dictionary<string, string>
        {
            [Path.Combine(dir, "middle.json")] = """{ "type": "object", "properties": { "r": { "$ref": "bad.json" } } }""",
            [Path.Combine(dir, "bad.json")] = """{ "type": "object", "properties": { "a": { "type": "array", "items": { "prefixItems": [] } } } }""",
        };

        var e = await Assert.ThrowsAsync<InvalidDataException>(() => JsonSchemaContract.FromJsonAsync(
            """{ "type": "object", "properties": { "q": { "$ref": "middle.json" } } }""", Path.Combine(dir, "input.json"), f => files.GetValueOrDefault(f)));

        Assert.Contains("'prefixItems' at $.properties.a.items.prefixItems", e.Message, StringComparison.Ordinal);
        Assert.Contains("(in bad.json)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PropertiesNamedLikeKeywords_AreProperties()
    {
        // "if" and "contains" here are property names, not keywords.
        const string schema = """{ "type": "object", "properties": { "if": { "type": "string" }, "contains": { "const": 2 } }, "required": ["if"] }""";

        Assert.Empty(Check(schema, """{ "if": "x", "contains": 2 }"""));
        Assert.NotEmpty(Check(schema, """{ "if": "x", "contains": 3 }"""));
    }
}
