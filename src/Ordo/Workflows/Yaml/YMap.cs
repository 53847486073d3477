using System.Text.RegularExpressions;

namespace Ordo.Workflows.Yaml;

/// <summary>Reads a YAML mapping key by key, reporting missing, mistyped and unknown keys with their location.</summary>
internal sealed class YMap
{
    private readonly Dictionary<string, (YNode Key, YNode Value)> _entries = new(StringComparer.Ordinal);
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);
    private readonly ProblemList _problems;

    private YMap(YNode node, ProblemList problems)
    {
        Node = node;
        _problems = problems;
        foreach (var (key, keyNode, value) in node.Entries())
        {
            _entries[key] = (keyNode, value);
        }
    }

    public YNode Node { get; }

    public IEnumerable<string> Keys => _entries.Keys;

    /// <summary>Opens a mapping; reports a problem and returns null when the node is something else.</summary>
    public static YMap? Open(YNode node, ProblemList problems, string what = "a mapping")
    {
        if (!node.IsMapping)
        {
            problems.Add(node, $"expected {what}, found {node.Describe()}");
            return null;
        }

        return new YMap(node, problems);
    }

    public bool Has(string key) => _entries.ContainsKey(key);

    public YNode? Get(string key)
    {
        _read.Add(key);
        return _entries.TryGetValue(key, out var e) ? e.Value : null;
    }

    public YNode? KeyNode(string key) => _entries.TryGetValue(key, out var e) ? e.Key : null;

    public YNode? Required(string key, string? hint = null)
    {
        var v = Get(key);
        if (v is null || v.Value.IsNull)
        {
            var message = $"missing required key '{key}'" + (hint is null ? "" : $" ({hint})");
            if (v is { } present)
            {
                _problems.Add(present, message);
            }
            else
            {
                // Located at the mapping that lacks the key, with the path the key would have.
                _problems.Add(Node.File, Node.Line, Node.Column, Node.Path.Length == 0 ? key : $"{Node.Path}.{key}", message);
            }

            return null;
        }

        return v;
    }

    public string? String(string key, bool required = false)
    {
        var v = required ? Required(key) : Get(key);
        if (v is not { } n || n.IsNull) return null;
        if (!n.IsScalar)
        {
            _problems.Add(n, $"expected a string, found {n.Describe()}");
            return null;
        }

        return n.Scalar;
    }

    public string? Identifier(string key, Regex pattern, string describe, bool required = false)
    {
        var s = String(key, required);
        if (s is not null && !pattern.IsMatch(s))
        {
            _problems.Add(Get(key)!.Value, $"'{s}' is not a valid {describe}");
            return null;
        }

        return s;
    }

    public int? Int(string key, bool required = false, int min = int.MinValue, int max = int.MaxValue)
    {
        var v = required ? Required(key) : Get(key);
        if (v is not { } n || n.IsNull) return null;
        if (!n.TryGetLong(out var l))
        {
            _problems.Add(n, $"expected an integer, found {n.Describe()}");
            return null;
        }

        if (l < min || l > max)
        {
            _problems.Add(n, max == int.MaxValue ? $"must be at least {min}, found {l}" : $"must be between {min} and {max}, found {l}");
            return null;
        }

        return (int)l;
    }

    public double? Number(string key, bool required = false, double min = double.NegativeInfinity, double max = double.PositiveInfinity)
    {
        var v = required ? Required(key) : Get(key);
        if (v is not { } n || n.IsNull) return null;
        if (!n.TryGetDouble(out var d))
        {
            _problems.Add(n, $"expected a number, found {n.Describe()}");
            return null;
        }

        if (d < min || d > max)
        {
            _problems.Add(n, double.IsPositiveInfinity(max) ? $"must be at least {min}, found {d}" : $"must be between {min} and {max}, found {d}");
            return null;
        }

        return d;
    }

    public bool? Bool(string key)
    {
        var v = Get(key);
        if (v is not { } n || n.IsNull) return null;
        if (!n.TryGetBool(out var b))
        {
            _problems.Add(n, $"expected true or false, found {n.Describe()}");
            return null;
        }

        return b;
    }

    public TimeSpan? Duration(string key, bool required = false, bool positive = false)
    {
        var v = required ? Required(key) : Get(key);
        if (v is not { } n || n.IsNull) return null;
        if (!n.IsScalar || !Durations.TryParse(n.Scalar, out var t))
        {
            _problems.Add(n, $"invalid duration {n.Describe()} (expected a number with a unit: 250ms, 30s, 5m, 2h, 1d)");
            return null;
        }

        if (positive && t <= TimeSpan.Zero)
        {
            _problems.Add(n, $"must be longer than 0, found {n.Describe()}");
            return null;
        }

        return t;
    }

    public string? Enum(string key, IReadOnlyList<string> allowed, bool required = false)
    {
        var s = String(key, required);
        if (s is not null && !allowed.Contains(s, StringComparer.Ordinal))
        {
            _problems.Add(Get(key)!.Value, $"'{s}' is not one of: {string.Join(", ", allowed)}");
            return null;
        }

        return s;
    }

    /// <summary>Reads a list of strings; a single string is accepted as a list of one.</summary>
    public IReadOnlyList<string>? StringList(string key, bool required = false)
    {
        var v = required ? Required(key) : Get(key);
        if (v is not { } n || n.IsNull) return null;
        if (n.IsScalar) return [n.Scalar!];
        if (!n.IsSequence)
        {
            _problems.Add(n, $"expected a list of strings, found {n.Describe()}");
            return null;
        }

        var list = new List<string>();
        foreach (var item in n.Items())
        {
            if (!item.IsScalar || item.IsNull)
            {
                _problems.Add(item, $"expected a string, found {item.Describe()}");
                continue;
            }

            list.Add(item.Scalar!);
        }

        return list;
    }

    /// <summary>Reports every key that was not read and is not in <paramref name="alsoAllowed"/>.</summary>
    public void RejectUnknown(params string[] alsoAllowed)
    {
        var unknown = _entries.Where(e => !_read.Contains(e.Key) && !alsoAllowed.Contains(e.Key, StringComparer.Ordinal)).ToList();
        if (unknown.Count == 0) return;
        var known = _read.Concat(alsoAllowed).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var expected = known.Count > 0 ? $"; expected one of: {string.Join(", ", known)}" : "";
        if (unknown.Count == _entries.Count && unknown.Count > 1 && known.Count > 0)
        {
            // Not one key is known: most likely not the kind of file (or mapping) it was meant to be. Its keys are not
            // repeated back: a file named by mistake (a key file, a password list) is not printed line by line.
            _problems.Add(Node, $"none of the {unknown.Count} keys here is known{expected} (is this the right file?)");
            return;
        }

        const int Shown = 5;
        foreach (var (key, (keyNode, _)) in unknown.Take(Shown))
        {
            var suggestion = Suggest(key, known);
            _problems.Add(keyNode, $"unknown key '{YNode.Excerpt(key)}'" + (suggestion is null ? "" : $" (did you mean '{suggestion}'?)") + expected);
        }

        if (unknown.Count > Shown)
        {
            _problems.Add(Node, $"{unknown.Count - Shown} more unknown keys here");
        }
    }

    private static string? Suggest(string key, IReadOnlyList<string> known)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var k in known)
        {
            var d = Distance(key, k);
            if (d < bestDistance)
            {
                bestDistance = d;
                best = k;
            }
        }

        return bestDistance <= Math.Max(1, key.Length / 3) ? best : null;
    }

    private static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (var j = 0; j <= b.Length; j++) d[0, j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);

                // Two swapped letters (modle → model) are one typo, not two.
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                {
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
                }
            }
        }

        return d[a.Length, b.Length];
    }
}
