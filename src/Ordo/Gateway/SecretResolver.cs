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

    /// <summary>
    /// The shortest secret value accepted: a shorter one could not be told apart from ordinary text (it would be
    /// "redacted" out of every word that contains it, or, worse, not at all), so using it is an error.
    /// </summary>
    public const int MinLength = 8;

    /// <summary>Whether a secret is set but shorter than <see cref="MinLength"/> (it would be refused when used).</summary>
    public bool IsTooShort(string name) => _lookup(name) is { } value && value.Length < MinLength;

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
            var value = m.Groups[1].Value == "env" && m.Groups[3].Success && string.IsNullOrEmpty(_lookup(name))
                ? m.Groups[3].Value
                : _lookup(name) ?? throw new SecretNotFoundException(name, m.Groups[1].Value == "secret");
            if (m.Groups[1].Value == "secret")
            {
                if (value.Length < MinLength) throw new SecretTooShortException(name);
                _resolved[name] = value;
            }

            return value;
        });
    }

    /// <summary>Resolves the secrets a text refers to without using them (so they are redacted even if a response echoes them first).</summary>
    public void Preload(string? text)
    {
        foreach (var name in References(text))
        {
            if (_lookup(name) is { Length: >= MinLength } value) _resolved[name] = value;
        }
    }

    private static string? DefaultLookup(string name)
    {
        if (Environment.GetEnvironmentVariable(name) is { } env) return env;
        return SecretsFile.Get(name);
    }

    [GeneratedRegex(@"\$\{secret:([A-Za-z_][A-Za-z0-9_]*)\}")]
    private static partial Regex Reference();

    [GeneratedRegex(@"\$\{(secret|env):([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")]
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
public class SecretNotFoundException : OrdoException
{
    /// <summary>Creates the error for a missing secret or variable.</summary>
    public SecretNotFoundException(string name, bool isSecret)
        : this(name, isSecret ? $"secret {name} is not set (set the environment variable {name}, or put it in the file named by ORDO_SECRETS_FILE)" : $"environment variable {name} is not set")
    {
    }

    /// <summary>Creates the error with its message.</summary>
    protected SecretNotFoundException(string name, string message) : base(message) => Name = name;

    /// <summary>The missing name.</summary>
    public string Name { get; }
}

/// <summary>A secret is shorter than <see cref="SecretResolver.MinLength"/> characters: it is not used.</summary>
public sealed class SecretTooShortException(string name)
    : SecretNotFoundException(name, $"secret {name} is shorter than {SecretResolver.MinLength} characters, too short to be told apart from other text and redacted; it is not used");

/// <summary>
/// Removes secret values from everything that leaves the gateway: results, errors, arguments. A value is replaced by
/// <c>[REDACTED:NAME]</c> wherever it appears, also JSON-escaped, URL-encoded or Base64-encoded.
/// </summary>
public sealed class SecretRedactor(SecretResolver secrets)
{
    /// <summary>The forms of each secret value, worked out once (every text that leaves the gateway is searched for them).</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (string Form, StringComparison Comparison)[]> _forms = new(StringComparer.Ordinal);

    /// <summary>The shortest piece of a secret, cut by a quote's limit, that is still redacted.</summary>
    private const int MinPiece = 6;

    /// <summary>The truncation mark of quoted text.</summary>
    private const char Ellipsis = '\u2026';

    /// <summary>
    /// Redacts a text: every form of every secret, and a piece of one cut off where the text was cut (before a
    /// <c>…</c> or at its end, after a <c>…</c> or at its start), so that a quote that stops inside a secret shows none of it.
    /// </summary>
    public string Redact(string? text)
    {
        if (string.IsNullOrEmpty(text) || secrets.Resolved.Count == 0) return text ?? "";
        foreach (var (name, value) in secrets.Resolved)
        {
            var mark = $"[REDACTED:{name}]";
            var forms = _forms.GetOrAdd(value, v => [.. Forms(v)]);
            foreach (var (form, comparison) in forms)
            {
                if (text.Contains(form, comparison)) text = text.Replace(form, mark, comparison);
            }

            foreach (var (form, comparison) in forms)
            {
                text = RedactCutPieces(text, form, comparison, mark);
            }
        }

        return text;
    }

    /// <summary>Replaces the longest start of <paramref name="form"/> that ends at a cut, and the longest end of it that starts at one.</summary>
    private static string RedactCutPieces(string text, string form, StringComparison comparison, string mark)
    {
        if (form.Length <= MinPiece) return text;

        // Cuts from the right, so that a replacement leaves the positions of those left of it as they were.
        var ends = Cuts(text).Append(text.Length).Reverse().ToList();
        foreach (var cut in ends)
        {
            for (var k = Math.Min(form.Length - 1, cut); k >= MinPiece; k--)
            {
                if (string.Compare(text, cut - k, form, 0, k, comparison) == 0)
                {
                    text = string.Concat(text.AsSpan(0, cut - k), mark, text.AsSpan(cut));
                    break;
                }
            }
        }

        var starts = Cuts(text).Select(i => i + 1).Prepend(0).Reverse().ToList();
        foreach (var start in starts)
        {
            for (var k = Math.Min(form.Length - 1, text.Length - start); k >= MinPiece; k--)
            {
                if (string.Compare(text, start, form, form.Length - k, k, comparison) == 0)
                {
                    text = string.Concat(text.AsSpan(0, start), mark, text.AsSpan(start + k));
                    break;
                }
            }
        }

        return text;

        static IEnumerable<int> Cuts(string t)
        {
            for (var i = t.IndexOf(Ellipsis, StringComparison.Ordinal); i >= 0; i = t.IndexOf(Ellipsis, i + 1))
            {
                yield return i;
            }
        }
    }

    /// <summary>
    /// Redacts every string and property name of a JSON value at every depth, as decoded (so a secret hidden behind
    /// <c>\u</c>-escapes is found too); returns the value unchanged when it holds no secret.
    /// </summary>
    public JsonElement Redact(JsonElement value)
    {
        if (secrets.Resolved.Count == 0 || !Holds(value)) return value;
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            Write(writer, value);
        }

        return JsonElementFactory.Parse(buffer.WrittenSpan);
    }

    /// <summary>Whether any string or property name of the value holds a secret.</summary>
    private bool Holds(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => Redact(value.GetString()) != value.GetString(),
        JsonValueKind.Array => value.EnumerateArray().Any(Holds),
        JsonValueKind.Object => value.EnumerateObject().Any(p => Redact(p.Name) != p.Name || Holds(p.Value)),
        _ => false,
    };

    private void Write(Utf8JsonWriter w, JsonElement value)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.String:
                w.WriteStringValue(Redact(value.GetString()));
                break;
            case JsonValueKind.Array:
                w.WriteStartArray();
                foreach (var item in value.EnumerateArray()) Write(w, item);
                w.WriteEndArray();
                break;
            case JsonValueKind.Object:
                w.WriteStartObject();
                foreach (var p in value.EnumerateObject())
                {
                    w.WritePropertyName(Redact(p.Name));
                    Write(w, p.Value);
                }

                w.WriteEndObject();
                break;
            default:
                value.WriteTo(w);
                break;
        }
    }

    /// <summary>
    /// The forms a secret may take in outside text: as it is, in any case (an upper-cased echo); JSON-escaped; its
    /// bytes in hexadecimal (either case); percent-encoded as a URI component, as a path
    /// (<c>/</c> kept), as a form (<c>+</c> for spaces) and byte by byte (hex digits and letters in either case); and
    /// Base64 or Base64url — also inside a longer encoded text, where the secret's own characters are those not shared
    /// with its neighbours (<c>base64("user:" + secret)</c>).
    /// </summary>
    private static IEnumerable<(string Form, StringComparison Comparison)> Forms(string value)
    {
        yield return (value, StringComparison.OrdinalIgnoreCase);
        var escaped = JsonSerializer.Serialize(value, GatewayJson.Default.String)[1..^1];
        if (escaped != value) yield return (escaped, StringComparison.Ordinal);
        var component = Uri.EscapeDataString(value);
        if (component != value)
        {
            yield return (component, StringComparison.OrdinalIgnoreCase);
            var path = component.Replace("%2F", "/", StringComparison.Ordinal);
            if (path != component) yield return (path, StringComparison.OrdinalIgnoreCase);
            var form = component.Replace("%20", "+", StringComparison.Ordinal);
            if (form != component) yield return (form, StringComparison.OrdinalIgnoreCase);
        }

        var bytes = System.Text.Encoding.UTF8.GetBytes(value);
        yield return (string.Concat(bytes.Select(b => $"%{b:X2}")), StringComparison.OrdinalIgnoreCase);
        yield return (Convert.ToHexString(bytes), StringComparison.OrdinalIgnoreCase);
        var whole = Convert.ToBase64String(bytes);
        yield return (whole, StringComparison.Ordinal);
        if (whole.TrimEnd('=').Replace('+', '-').Replace('/', '_') is var wholeUrl && wholeUrl != whole) yield return (wholeUrl, StringComparison.Ordinal);
        for (var offset = 0; offset < 3; offset++)
        {
            var padded = new byte[offset + bytes.Length];
            bytes.CopyTo(padded, offset);
            var encoded = Convert.ToBase64String(padded);
            // The characters made only of the secret's bits: after the prefix's, before the padding's.
            var first = (8 * offset + 5) / 6;
            var last = (8 * (offset + bytes.Length) / 6) - 1;
            if (last - first + 1 < MinPiece + 2) continue;
            var core = encoded[first..(last + 1)];
            yield return (core, StringComparison.Ordinal);
            var url = core.Replace('+', '-').Replace('/', '_');
            if (url != core) yield return (url, StringComparison.Ordinal);
        }
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
internal sealed partial class GatewayJson : System.Text.Json.Serialization.JsonSerializerContext;
