using System.Globalization;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Ordo.Workflows.Yaml;

/// <summary>A YAML node with the file it came from and its key path, so every problem can say where it is.</summary>
internal readonly partial record struct YNode(YamlNode Node, string Path, string File)
{
    public int Line => (int)Node.Start.Line;

    public int Column => (int)Node.Start.Column;

    /// <summary>Where the node is written, as <c>file:line:column (path)</c>, for messages that point back at the config.</summary>
    public string Where() => $"{System.IO.Path.GetFileName(File)}:{Line}:{Column} {Path}";

    public bool IsMapping => Node is YamlMappingNode;

    public bool IsSequence => Node is YamlSequenceNode;

    public bool IsScalar => Node is YamlScalarNode;

    /// <summary>True for a plain scalar that YAML reads as null (<c>~</c>, <c>null</c>, empty).</summary>
    public bool IsNull => Node is YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any } s && (s.Value is null or "" or "~" or "null" or "Null" or "NULL");

    /// <summary>The text of a scalar, or null for a collection.</summary>
    public string? Scalar => (Node as YamlScalarNode)?.Value;

    /// <summary>Whether the scalar was written in quotes or as a block (so it is a string whatever it looks like).</summary>
    public bool IsQuoted => Node is YamlScalarNode { Style: ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted or ScalarStyle.Literal or ScalarStyle.Folded };

    public YNode Child(string key, YamlNode node) => new(node, Path.Length == 0 ? key : $"{Path}.{key}", File);

    public YNode Item(int index, YamlNode node) => new(node, $"{Path}[{index}]", File);

    public IEnumerable<YNode> Items()
    {
        if (Node is YamlSequenceNode seq)
        {
            var i = 0;
            foreach (var n in seq.Children)
            {
                yield return Item(i++, n);
            }
        }
    }

    /// <summary>The entries of a mapping, with keys as text.</summary>
    public IEnumerable<(string Key, YNode KeyNode, YNode Value)> Entries()
    {
        if (Node is YamlMappingNode map)
        {
            foreach (var kv in map.Children)
            {
                var key = (kv.Key as YamlScalarNode)?.Value ?? "";
                yield return (key, new YNode(kv.Key, Path.Length == 0 ? key : $"{Path}.{key}", File), Child(key, kv.Value));
            }
        }
    }

    /// <summary>Finds a descendant by a path relative to this node (<c>plan.catalog[1]</c>, <c>next[0].to</c>), or null.</summary>
    public YNode? Find(string relativePath)
    {
        YNode? current = this;
        foreach (var segment in relativePath.Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            var bracket = segment.IndexOf('[', StringComparison.Ordinal);
            var name = bracket < 0 ? segment : segment[..bracket];
            if (name.Length > 0)
            {
                current = current is { } c ? c.Entries().Where(e => e.Key == name).Select(e => (YNode?)e.Value).FirstOrDefault() : null;
            }

            var rest = bracket < 0 ? "" : segment[bracket..];
            while (current is { } node && rest.StartsWith('['))
            {
                var close = rest.IndexOf(']', StringComparison.Ordinal);
                if (close < 0 || !int.TryParse(rest[1..close], NumberStyles.None, CultureInfo.InvariantCulture, out var index))
                {
                    return null;
                }

                current = node.Items().Skip(index).Select(i => (YNode?)i).FirstOrDefault();
                rest = rest[(close + 1)..];
            }

            if (current is null)
            {
                return null;
            }
        }

        return current;
    }

    /// <summary>Reads a plain scalar as a YAML 1.2 core-schema boolean.</summary>
    public bool TryGetBool(out bool value)
    {
        value = false;
        if (IsQuoted || Scalar is null) return false;
        switch (Scalar)
        {
            case "true" or "True" or "TRUE": value = true; return true;
            case "false" or "False" or "FALSE": return true;
            default: return false;
        }
    }

    public bool TryGetLong(out long value)
    {
        value = 0;
        return !IsQuoted && Scalar is not null && IntPattern().IsMatch(Scalar)
            && long.TryParse(Scalar, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value);
    }

    public bool TryGetDouble(out double value)
    {
        value = 0;
        return !IsQuoted && Scalar is not null && FloatPattern().IsMatch(Scalar)
            && double.TryParse(Scalar, NumberStyles.Float, CultureInfo.InvariantCulture, out value);
    }

    public string Describe() => Node switch
    {
        YamlMappingNode => "a mapping",
        YamlSequenceNode => "a list",
        _ when IsNull => "null",
        _ => $"'{Excerpt(Scalar)}'",
    };

    /// <summary>At most the start of a scalar, on one line: an error never prints a whole file given where a name was expected.</summary>
    internal static string Excerpt(string? text)
    {
        if (text is null) return "";
        var line = string.Concat(text.Take(60).Select(c => char.IsControl(c) ? ' ' : c));
        return text.Length > 60 ? line + "…" : line;
    }

    [GeneratedRegex(@"^[-+]?[0-9]+$")]
    private static partial Regex IntPattern();

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")]
    private static partial Regex FloatPattern();
}
