using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace Ordo.Workflows.Yaml;

/// <summary>
/// Parses YAML text into a node tree, turning every syntax error into a located <see cref="ValidationProblem"/>. The
/// reader is bounded before anything is built: nesting deeper than <see cref="MaxDepth"/>, an alias inside the node
/// it names (a cycle), or aliases that would expand the document past <see cref="MaxNodes"/> nodes (a "billion
/// laughs") are errors at the place they occur, so no file can make the loader take unbounded time, memory or stack.
/// </summary>
internal static class YamlDocumentLoader
{
    /// <summary>The deepest nesting of mappings and sequences a file may have.</summary>
    public const int MaxDepth = 32;

    /// <summary>The most nodes a file may hold, counting each alias as the nodes it stands for.</summary>
    public const int MaxNodes = 100_000;

    /// <summary>The largest file read, in characters.</summary>
    public const int MaxLength = 4 * 1024 * 1024;

    public static YNode? Load(string displayName, string text, ProblemList problems)
    {
        if (text.Length > MaxLength)
        {
            problems.Add(displayName, 1, 1, "", $"the file is larger than {MaxLength / (1024 * 1024)} MB; a workflow or project file is expected to be far smaller");
            return null;
        }

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
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            // The reader's own complaints about a structure it cannot build (an event where none may be): still the file's fault.
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

    /// <summary>
    /// Remembers where the last successfully parsed event ended (for errors the parser reports without a position), and
    /// enforces the limits as the events arrive: depth, cycles through aliases, and the size aliases expand to.
    /// </summary>
    private sealed class TrackingParser(IParser inner) : IParser
    {
        private readonly Dictionary<string, (long Nodes, int Depth)> _anchors = new(StringComparer.Ordinal);
        private readonly Stack<Frame> _open = new();
        private long _nodes;

        public Mark Last { get; private set; } = Mark.Empty;

        public ParsingEvent? Current => inner.Current;

        public bool MoveNext()
        {
            var moved = inner.MoveNext();
            if (inner.Current is { } c)
            {
                Check(c);
                Last = c.End;
            }

            return moved;
        }

        private void Check(ParsingEvent e)
        {
            switch (e)
            {
                case AnchorAlias alias:
                {
                    var name = alias.Value.Value;
                    if (_open.Any(o => o.Anchor == name))
                    {
                        throw new YamlException(e.Start, e.End, $"alias *{name} refers to the node that contains it: a YAML value cannot contain itself");
                    }

                    var (nodes, depth) = _anchors.TryGetValue(name, out var known) ? known : (1, 0);
                    Count(e, nodes);
                    Reach(e, _open.Count + depth, $" (alias *{name} stands for {depth} more)");
                    return;
                }

                case MappingStart or SequenceStart:
                {
                    Count(e, 1);
                    Reach(e, _open.Count + 1, "");
                    var anchor = ((NodeEvent)e).Anchor;
                    _open.Push(new Frame(anchor.IsEmpty ? null : anchor.Value, _nodes, _open.Count + 1));
                    return;
                }

                case MappingEnd or SequenceEnd:
                    if (_open.TryPop(out var done) && done.Anchor is { } named)
                    {
                        _anchors[named] = (_nodes - done.StartedAt + 1, done.Deepest - done.Level + 1);
                    }

                    return;
                case Scalar scalar:
                    Count(e, 1);
                    if (!scalar.Anchor.IsEmpty) _anchors[scalar.Anchor.Value] = (1, 0);
                    return;
            }
        }

        /// <summary>A value reaches <paramref name="level"/> levels of nesting (an alias, the levels of the node it names too).</summary>
        private void Reach(ParsingEvent e, int level, string how)
        {
            if (level > MaxDepth)
            {
                throw new YamlException(e.Start, e.End, $"the nesting is deeper than {MaxDepth} levels{how}");
            }

            foreach (var frame in _open)
            {
                if (frame.Deepest >= level) break;
                frame.Deepest = level;
            }
        }

        private sealed class Frame(string? anchor, long startedAt, int level)
        {
            public string? Anchor { get; } = anchor;
            public long StartedAt { get; } = startedAt;
            public int Level { get; } = level;
            public int Deepest { get; set; } = level;
        }

        private void Count(ParsingEvent e, long nodes)
        {
            _nodes += nodes;
            if (_nodes > MaxNodes)
            {
                throw new YamlException(e.Start, e.End, $"the file holds more than {MaxNodes:N0} nodes (counting what each alias stands for)");
            }
        }
    }
}
