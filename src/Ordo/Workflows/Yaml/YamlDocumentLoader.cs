using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace Ordo.Workflows.Yaml;

/// <summary>Parses YAML text into a node tree, turning every syntax error into a located <see cref="ValidationProblem"/>.</summary>
internal static class YamlDocumentLoader
{
    public static YNode? Load(string displayName, string text, ProblemList problems)
    {
        var parser = new TrackingParser(new Parser(new StringReader(text)));
        try
        {
            var stream = new YamlStream();
            stream.Load(parser);
            if (stream.Documents.Count == 0)
            {
                problems.Add(displayName, 1, 1, "", "the file is empty");
                return null;
            }

            if (stream.Documents.Count > 1)
            {
                var second = stream.Documents[1].RootNode.Start;
                problems.Add(displayName, (int)second.Line, (int)second.Column, "", "the file holds more than one YAML document; put one per file");
                return null;
            }

            return new YNode(stream.Documents[0].RootNode, "", displayName);
        }
        catch (YamlException e)
        {
            var mark = e.Start.Line > 0 ? e.Start : parser.Last;
            problems.Add(displayName, (int)mark.Line, (int)mark.Column, "", "invalid YAML: " + FirstLine(e.Message));
            return null;
        }
        catch (InvalidOperationException e)
        {
            var mark = parser.Last;
            problems.Add(displayName, (int)mark.Line, (int)mark.Column, "", "invalid YAML near here (" + FirstLine(e.Message) + ")");
            return null;
        }
    }

    private static string FirstLine(string message)
    {
        var i = message.IndexOf('\n', StringComparison.Ordinal);
        return (i < 0 ? message : message[..i]).Trim();
    }

    /// <summary>Remembers where the last successfully parsed event ended, for errors the parser reports without a position.</summary>
    private sealed class TrackingParser(IParser inner) : IParser
    {
        public Mark Last { get; private set; } = Mark.Empty;

        public ParsingEvent? Current => inner.Current;

        public bool MoveNext()
        {
            var moved = inner.MoveNext();
            if (inner.Current is { } c)
            {
                Last = c.End;
            }

            return moved;
        }
    }
}
