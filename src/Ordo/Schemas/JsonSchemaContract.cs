using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using NJsonSchema;
using NJsonSchema.Validation;

namespace Ordo.Schemas;

/// <summary>A JSON Schema that values are checked against: job inputs, agent outputs, tool arguments and results.</summary>
/// <remarks>Thread-safe once created.</remarks>
public sealed partial class JsonSchemaContract
{
    private readonly JsonSchema _schema;

    private JsonSchemaContract(JsonSchema schema, string json)
    {
        _schema = schema;
        Json = json;
    }

    /// <summary>The schema as JSON text (with references as written).</summary>
    public string Json { get; }

    /// <summary>Parses a schema. File references (<c>$ref: other.json</c>) are read through <paramref name="readFile"/>; URL references are refused.</summary>
    /// <param name="json">The schema text.</param>
    /// <param name="documentPath">The absolute path the schema was read from (relative references resolve against it).</param>
    /// <param name="readFile">Reads a referenced file by absolute path, or returns null when it does not exist.</param>
    /// <param name="cancellationToken">Cancels the load.</param>
    /// <exception cref="InvalidDataException">
    /// The schema is not valid JSON, a reference cannot be resolved, or it uses a keyword the checks do not enforce
    /// (<c>if</c>/<c>then</c>/<c>else</c>, <c>contains</c>, <c>propertyNames</c>, <c>dependentRequired</c>...). <c>const</c> is
    /// checked as the equivalent one-value <c>enum</c>.
    /// </exception>
    public static async Task<JsonSchemaContract> FromJsonAsync(string json, string documentPath, Func<string, string?> readFile, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(json);
        CheckTypes(json);
        // A referenced file's own error (a keyword the checks would ignore) is kept here: the library reports any failure
        // to load a reference as "could not resolve", which would hide it.
        var refused = new StrongBox<InvalidDataException?>();
        try
        {
            var schema = await JsonSchema.FromJsonAsync(SchemaKeywords.Prepare(json), documentPath, s => new FileSourceReferenceResolver(s, readFile, refused), cancellationToken).ConfigureAwait(false);
            return new JsonSchemaContract(schema, json);
        }
        catch (Exception e) when (e is Newtonsoft.Json.JsonException or InvalidOperationException or NotSupportedException or FileNotFoundException or ArgumentException or InvalidDataException)
        {
            if (refused.Value is { } inner) throw inner;
            if (e is InvalidDataException) throw;
            throw new InvalidDataException($"invalid JSON Schema: {e.Message}", e);
        }
    }

    private static readonly string[] TypeNames = ["null", "boolean", "object", "array", "number", "integer", "string"];

    /// <summary>Keys whose values are data, not schemas: a <c>type</c> inside them is not a schema keyword.</summary>
    private static readonly string[] DataKeys = ["enum", "const", "default", "examples", "example"];

    /// <summary>Rejects a <c>type</c> that names no JSON type (<c>objekt</c>): the schema library would ignore it and accept anything.</summary>
    private static void CheckTypes(string json)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException)
        {
            // Left to the schema library, which reports where the JSON is broken.
            return;
        }

        using (doc)
        {
            Check(doc.RootElement, "$");
        }

        static void Check(JsonElement e, string path)
        {
            if (e.ValueKind == JsonValueKind.Array)
            {
                var i = 0;
                foreach (var item in e.EnumerateArray()) Check(item, $"{path}[{i++}]");
                return;
            }

            if (e.ValueKind != JsonValueKind.Object) return;
            foreach (var p in e.EnumerateObject())
            {
                if (DataKeys.Contains(p.Name, StringComparer.Ordinal)) continue;
                var at = $"{path}.{p.Name}";
                if (p.Name == "type" && p.Value.ValueKind != JsonValueKind.Object)
                {
                    var names = p.Value.ValueKind == JsonValueKind.Array ? p.Value.EnumerateArray().ToList() : [p.Value];
                    foreach (var n in names.Where(n => n.ValueKind != JsonValueKind.String || !TypeNames.Contains(n.GetString(), StringComparer.Ordinal)))
                    {
                        throw new InvalidDataException($"invalid JSON Schema: {n.GetRawText()} at {at} is not a JSON type ({string.Join(", ", TypeNames)})");
                    }

                    continue;
                }

                Check(p.Value, at);
            }
        }
    }

    /// <summary>Parses a schema that has no file references.</summary>
    /// <exception cref="InvalidDataException">The schema is not valid.</exception>
    public static JsonSchemaContract FromJson(string json)
    {
        // The parser is asynchronous only for the files a schema may reference; with no file to read (the reader answers
        // nothing) it does no I/O and completes before it returns, so waiting here blocks nothing.
#pragma warning disable RS0030
        return FromJsonAsync(json, Path.Combine(Path.GetTempPath(), "inline.json"), _ => null).GetAwaiter().GetResult();
#pragma warning restore RS0030
    }

    /// <summary>Checks a value; returns one message per violation (<c>$.lines[0].amount: number expected</c>), empty when valid.</summary>
    public IReadOnlyList<string> Validate(JsonElement value)
    {
        // A number the checker cannot represent would make it throw: such a value fails the contract, named where it is.
        if (UncheckableNumber(value, "$") is { } where)
        {
            return [where];
        }

        ICollection<ValidationError> errors;
        try
        {
            errors = _schema.Validate(value.GetRawText());
        }
        catch (Exception e) when (e is InvalidCastException or OverflowException or FormatException or Newtonsoft.Json.JsonException or ArgumentException)
        {
            return [$"$: the value could not be checked against the schema ({e.GetType().Name}: {e.Message})"];
        }

        if (errors.Count == 0)
        {
            return [];
        }

        var messages = new List<string>();
        Flatten(errors, messages);
        return messages.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// The first number a schema cannot check, described with its path: an integer outside 64 bits or a number outside
    /// the range of a double (<c>123456789012345678901234567890</c>, <c>-1e400</c>).
    /// </summary>
    internal static string? UncheckableNumber(JsonElement value, string path)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Number:
            {
                var raw = value.GetRawText();
                var integer = raw.AsSpan().IndexOfAny('.', 'e', 'E') < 0;
                if (integer ? !value.TryGetInt64(out _) && !value.TryGetUInt64(out _) : !(value.TryGetDouble(out var d) && double.IsFinite(d)))
                {
                    var shown = raw.Length <= 40 ? raw : raw[..40] + "…";
                    return $"{path}: the number {shown} is out of range ({(integer ? "integers must fit in 64 bits" : "numbers must fit in a double")})";
                }

                return null;
            }

            case JsonValueKind.Object:
                foreach (var p in value.EnumerateObject())
                {
                    if (UncheckableNumber(p.Value, $"{path}.{p.Name}") is { } found) return found;
                }

                return null;
            case JsonValueKind.Array:
                var i = 0;
                foreach (var item in value.EnumerateArray())
                {
                    if (UncheckableNumber(item, $"{path}[{i++}]") is { } found) return found;
                }

                return null;
            default:
                return null;
        }
    }

    private static void Flatten(IEnumerable<ValidationError> errors, List<string> into)
    {
        foreach (var error in errors)
        {
            if (error is ChildSchemaValidationError child && child.Errors.Count > 0 && error.Kind is ValidationErrorKind.ArrayItemNotValid or ValidationErrorKind.AdditionalItemNotValid or ValidationErrorKind.PropertyRequired)
            {
                Flatten(child.Errors.SelectMany(kv => kv.Value), into);
                continue;
            }

            into.Add($"{FormatPath(error.Path)}: {Describe(error)}");
        }
    }

    private static string FormatPath(string? path)
    {
        if (string.IsNullOrEmpty(path) || path == "#")
        {
            return "$";
        }

        var p = path.StartsWith("#/", StringComparison.Ordinal) ? path[2..] : path.TrimStart('#');
        return "$." + p.Replace('/', '.');
    }

    private static string Describe(ValidationError error)
    {
        var kind = error.Kind switch
        {
            ValidationErrorKind.PropertyRequired => $"required property '{error.Property}' is missing",
            ValidationErrorKind.NoAdditionalPropertiesAllowed => $"property '{error.Property}' is not allowed",
            _ => SplitWords(error.Kind.ToString()),
        };
        if (error.Schema is { } s && error.Kind is ValidationErrorKind.PatternMismatch && s.Pattern is not null)
        {
            kind += $" (pattern {s.Pattern})";
        }

        return kind;
    }

    private static string SplitWords(string name) => WordBoundary().Replace(name, " $1").Trim().ToLowerInvariant();

    [GeneratedRegex("([A-Z])")]
    private static partial Regex WordBoundary();

    private sealed class FileSourceReferenceResolver(JsonSchema root, Func<string, string?> readFile, StrongBox<InvalidDataException?> refused)
        : JsonReferenceResolver(new JsonSchemaAppender(root, new DefaultTypeNameGenerator()))
    {
        public override async Task<NJsonSchema.References.IJsonReference> ResolveFileReferenceAsync(string filePath, CancellationToken cancellationToken = default)
        {
            var text = readFile(filePath) ?? throw new FileNotFoundException($"referenced schema file '{filePath}' does not exist");
            string prepared;
            try
            {
                prepared = SchemaKeywords.Prepare(text);
            }
            catch (InvalidDataException e)
            {
                var named = new InvalidDataException($"{e.Message} (in {Path.GetFileName(filePath)})", e);
                refused.Value ??= named;
                throw named;
            }

            return await JsonSchema.FromJsonAsync(prepared, filePath, s => new FileSourceReferenceResolver(s, readFile, refused), cancellationToken).ConfigureAwait(false);
        }

        public override Task<NJsonSchema.References.IJsonReference> ResolveUrlReferenceAsync(string url, CancellationToken cancellationToken = default)
            => throw new NotSupportedException($"schema reference '{url}' points to a URL; Ordo reads schemas from files only");
    }
}
