using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Ordo.Cli.Hosting;

/// <summary>
/// Finds where the value named by a JSON path (<c>$.invoices[0].id</c>, the form schema errors use) starts in a JSON
/// text, so that an error about a job input can name its line and column. A path that does not exist (a missing
/// required property) is located at its nearest existing parent.
/// </summary>
internal static class JsonLocator
{
    /// <summary>The 1-based line and column of the value at <paramref name="path"/> (or of its nearest parent), or null when the text cannot be read.</summary>
    public static (int Line, int Column)? Locate(string text, string path)
    {
        var utf8 = Encoding.UTF8.GetBytes(text);
        Dictionary<string, long> starts;
        try
        {
            starts = Index(utf8);
        }
        catch (JsonException)
        {
            return null;
        }

        for (var p = path; ; p = Parent(p))
        {
            if (starts.TryGetValue(p, out var offset))
            {
                return ToLineColumn(utf8, (int)offset);
            }

            if (p == "$")
            {
                return null;
            }
        }
    }

    private static Dictionary<string, long> Index(byte[] utf8)
    {
        var starts = new Dictionary<string, long>(StringComparer.Ordinal);
        var frames = new List<Frame>();
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        while (reader.Read())
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.PropertyName:
                    frames[^1].Name = reader.GetString();
                    starts.TryAdd(PathOf(frames), reader.TokenStartIndex);
                    break;
                case JsonTokenType.EndObject or JsonTokenType.EndArray:
                    frames.RemoveAt(frames.Count - 1);
                    break;
                default:
                    if (frames.Count > 0 && frames[^1].IsArray)
                    {
                        frames[^1].Index++;
                    }

                    starts.TryAdd(PathOf(frames), reader.TokenStartIndex);
                    if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
                    {
                        frames.Add(new Frame { IsArray = reader.TokenType == JsonTokenType.StartArray });
                    }

                    break;
            }
        }

        return starts;
    }

    private static string PathOf(List<Frame> frames)
    {
        var sb = new StringBuilder("$");
        foreach (var f in frames)
        {
            if (f.IsArray)
            {
                if (f.Index >= 0) sb.Append('[').Append(f.Index.ToString(CultureInfo.InvariantCulture)).Append(']');
            }
            else if (f.Name is not null)
            {
                sb.Append('.').Append(f.Name);
            }
        }

        return sb.ToString();
    }

    private static string Parent(string path)
    {
        var cut = path.EndsWith(']') ? path.LastIndexOf('[') : path.LastIndexOf('.');
        return cut <= 0 ? "$" : path[..cut];
    }

    private static (int Line, int Column) ToLineColumn(byte[] utf8, int offset)
    {
        var line = 1;
        var lineStart = 0;
        for (var i = 0; i < offset && i < utf8.Length; i++)
        {
            if (utf8[i] == (byte)'\n')
            {
                line++;
                lineStart = i + 1;
            }
        }

        return (line, Encoding.UTF8.GetCharCount(utf8, lineStart, offset - lineStart) + 1);
    }

    private sealed class Frame
    {
        public bool IsArray { get; init; }

        public int Index { get; set; } = -1;

        public string? Name { get; set; }
    }
}
