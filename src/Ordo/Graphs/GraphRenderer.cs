namespace Ordo.Graphs;

/// <summary>Draws a workflow graph, with or without a job on it, as Mermaid, Graphviz DOT or SVG.</summary>
public static class GraphRenderer
{
    /// <summary>Draws <paramref name="graph"/> in <paramref name="format"/>; with <paramref name="overlay"/>, the path the job took and each step's status.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="graph"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="format"/> is not a known format.</exception>
    public static string Render(WorkflowGraph graph, GraphFormat format, JobGraphOverlay? overlay = null)
    {
        ArgumentNullException.ThrowIfNull(graph);
        return format switch
        {
            GraphFormat.Mermaid => MermaidRenderer.Render(graph, overlay),
            GraphFormat.Dot => DotRenderer.Render(graph, overlay),
            GraphFormat.Svg => SvgRenderer.Render(graph, overlay),
            _ => throw new ArgumentOutOfRangeException(nameof(format), format, "not a graph format"),
        };
    }

    /// <summary>Parses a format name: <c>mermaid</c>, <c>dot</c> or <c>svg</c> (any case).</summary>
    public static bool TryParseFormat(string? text, out GraphFormat format)
    {
        switch (text?.Trim().ToLowerInvariant())
        {
            case "mermaid": format = GraphFormat.Mermaid; return true;
            case "dot": format = GraphFormat.Dot; return true;
            case "svg": format = GraphFormat.Svg; return true;
            default: format = default; return false;
        }
    }

    /// <summary>The media type of a drawing: <c>image/svg+xml</c> for SVG, <c>text/plain</c> otherwise.</summary>
    public static string MediaType(GraphFormat format) => format == GraphFormat.Svg ? "image/svg+xml" : "text/plain";
}
