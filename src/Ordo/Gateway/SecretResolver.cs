using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Ordo.Gateway;

/// <summary>
/// Resolves <c>${secret:NAME}</c> references, only inside the gateway (and the model client factory): from the
/// environment variable NAME, else from the secrets file named by <c>ORDO_SECRETS_FILE</c> (<c>NAME=value</c> lines).
/// Every value it hands out is remembered so that <see cref="SecretRedactor"/> can remove it from anything that leaves.
/// </summary>
/// <remarks>Thread-safe.</remarks>
public sealed partial class SecretResolver
{
    private readonly Func<string, string?> _lookup;
    private readonly ConcurrentDictionary<string, string> _resolved = new(StringComparer.Ordinal);

    /// <summary>Creates a resolver over the environment and the secrets file.</summary>
    public SecretResolver() : this(DefaultLookup) { }

    /// <summary>Creates a resolver over a lookup function (tests, vaults).</summary>
    public SecretResolver(Func<string, string?> lookup) => _lookup = lookup ?? throw new ArgumentNullException(nameof(lookup));

    /// <summary>Every secret value handed out so far, by name.</summary>
    public IReadOnlyDictionary<string, string> Resolved => _resolved;

    /// <summary>Whether a text holds a secret reference.</summary>
    public static bool HasReference(string? text) => text is not null && text.Contains("${secret:", StringComparison.Ordinal);

    /// <summary>The secret names a text refers to.</summary>
    public static IEnumerable<string> References(string? text) => text is null ? [] : Reference().Matches(text).Select(m => m.Groups[1].Value);

    /// <summary>Replaces every <c>${secret:NAME}</c> (and <c>${env:NAME}</c>) in a text.</summary>
    /// <exception cref="SecretNotFoundException">A secret is not set.</exception>
    public string Resolve(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!text.Contains("${", StringComparison.Ordinal)) return text;
        return AnyReference().Replace(text, m =>
        {
            var name = m.Groups[2].Value;
            var value = _lookup(name) ?? throw new SecretNotFoundException(name, m.Groups[1].Value == "secret");
            if (m.Groups[1].Value == "secret" && value.Length > 0) _resolved[name] = value;
            return value;
        });
    }

    /// <summary>Resolves the secrets a text refers to without using them (so they are redacted even if a response echoes them first).</summary>
    public void Preload(string? text)
    {
        foreach (var name in References(text))
        {
            if (_lookup(name) is { Length: > 0 } value) _resolved[name] = value;
        }
    }

    private static string? DefaultLookup(string name)
    {
        if (Environment.GetEnvironmentVariable(name) is { } env) return env;
        return SecretsFile.Get(name);
    }

    [GeneratedRegex(@"\$\{secret:([A-Za-z_][A-Za-z0-9_]*)\}")]
    private static partial Regex Reference();

    [GeneratedRegex(@"\$\{(secret|env):([A-Za-z_][A-Za-z0-9_]*)\}")]
    private static partial Regex AnyReference();

    private static class SecretsFile
    {
        private static readonly Lazy<Dictionary<string, string>> Values = new(Load);

        public static string? Get(string name) => Values.Value.GetValueOrDefault(name);

        private static Dictionary<string, string> Load()
        {
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            var path = Environment.GetEnvironmentVariable("ORDO_SECRETS_FILE");
            if (string.IsNullOrEmpty(path) || !File.Exists(path)) return result;
            foreach (var raw in File.ReadAllLines(path))
            {
                var line = raw.Trim();
                if (line.Length == 0 || line.StartsWith('#')) continue;
                var eq = line.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0) continue;
                var value = line[(eq + 1)..].Trim();
                if (value.Length >= 2 && value[0] == '"' && value[^1] == '"') value = value[1..^1];
                result[line[..eq].Trim()] = value;
            }

            return result;
        }
    }
}

/// <summary>A secret (or environment variable) that a definition refers to is not set.</summary>
public sealed class SecretNotFoundException(string name, bool isSecret)
    : OrdoException(isSecret ? $"secret {name} is not set (set the environment variable {name}, or put it in the file named by ORDO_SECRETS_FILE)" : $"environment variable {name} is not set")
{
    /// <summary>The missing name.</summary>
    public string Name { get; } = name;
}

/// <summary>
/// Removes secret values from everything that leaves the gateway: results, errors, arguments. A value is replaced by
/// <c>[REDACTED:NAME]</c> wherever it appears, also JSON-escaped, URL-encoded or Base64-encoded.
/// </summary>
public sealed class SecretRedactor(SecretResolver secrets)
{
    /// <summary>Redacts a text.</summary>
    public string Redact(string? text)
    {
        if (string.IsNullOrEmpty(text) || secrets.Resolved.Count == 0) return text ?? "";
        foreach (var (name, value) in secrets.Resolved)
        {
            if (value.Length < 4) continue;
            foreach (var form in Forms(value))
            {
                if (text.Contains(form, StringComparison.Ordinal)) text = text.Replace(form, $"[REDACTED:{name}]", StringComparison.Ordinal);
            }
        }

        return text;
    }

    /// <summary>Redacts every string (and property name) in a JSON value; returns it unchanged when it holds no secret.</summary>
    public JsonElement Redact(JsonElement value)
    {
        if (secrets.Resolved.Count == 0) return value;
        var raw = value.GetRawText();
        var redacted = Redact(raw);
        if (ReferenceEquals(raw, redacted) || raw == redacted)
        {
            // Also catch values that only appear after JSON unescaping (\u-escapes).
            var unescaped = value.ValueKind == JsonValueKind.String ? value.GetString() ?? "" : "";
            if (unescaped.Length == 0 || Redact(unescaped) == unescaped) return value;
            return JsonSerializer.SerializeToElement(Redact(unescaped), GatewayJson.Default.String);
        }

        try
        {
            return JsonElementFactory.Parse(redacted);
        }
        catch (JsonException)
        {
            return JsonSerializer.SerializeToElement(redacted, GatewayJson.Default.String);
        }
    }

    private static IEnumerable<string> Forms(string value)
    {
        yield return value;
        var escaped = JsonSerializer.Serialize(value, GatewayJson.Default.String)[1..^1];
        if (escaped != value) yield return escaped;
        var url = Uri.EscapeDataString(value);
        if (url != value) yield return url;
        yield return Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(value));
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
internal sealed partial class GatewayJson : System.Text.Json.Serialization.JsonSerializerContext;
