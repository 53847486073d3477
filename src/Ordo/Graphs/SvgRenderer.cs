using System.Globalization;
using System.Text;
using Ordo.State;

namespace Ordo.Graphs;

/// <summary>
/// Draws a workflow graph as a self-contained SVG (<see cref="SvgLayout"/>): no script, no external reference, every text
/// XML-escaped. Accessible: <c>role="img"</c> with a title and a description. With a job, each step shows its status and
/// attempts in words and as a class (<c>s-succeeded</c>, …), and the edges taken are drawn bold (class <c>taken</c>).
/// </summary>
internal static class SvgRenderer
{
    /// <summary>The longest line drawn in a node, in characters; the full text is in the node's title.</summary>
    public const int NodeLineMax = 48;
    /// <summary>The longest edge label drawn, in characters; the full text is in the edge's title.</summary>
    public const int EdgeLabelMax = 40;

    private const string Ink = "#1f2933";
    private const string Muted = "#52606d";
    private const string EdgeColor = "#8a96a3";
    private const string TakenColor = "#2e7d32";

    public static string Render(WorkflowGraph graph, JobGraphOverlay? overlay)
    {
        var layout = SvgLayout.Compute(graph, n => [.. GraphText.Lines(n, overlay).Select(l => GraphText.Clip(l, NodeLineMax))], TextWidth);
        var w = Num(layout.Width);
        var h = Num(layout.Height);
        var title = overlay is null ? $"Graph of workflow {graph.Workflow}" : $"Graph of workflow {graph.Workflow}: job {overlay.JobId}, {overlay.Status.ToWire().Replace('_', ' ')}";
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"ordo-graph\" data-testid=\"job-graph\" role=\"img\" aria-labelledby=\"ordo-graph-title ordo-graph-desc\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"system-ui, -apple-system, 'Segoe UI', sans-serif\" font-size=\"12\"");
        if (overlay is not null) sb.Append(" data-job-id=\"").Append(Xml(overlay.JobId.Value)).Append("\" data-job-status=\"").Append(overlay.Status.ToWire()).Append('"');
        sb.Append(">\n");
        sb.Append("<title id=\"ordo-graph-title\">").Append(Xml(title)).Append("</title>\n");
        sb.Append("<desc id=\"ordo-graph-desc\">").Append(Xml(Description(graph, overlay))).Append("</desc>\n");
        sb.Append("<defs>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<marker id=\"ordo-arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"{EdgeColor}\"/></marker>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<marker id=\"ordo-arrow-taken\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"{TakenColor}\"/></marker>\n");
        sb.Append("</defs>\n");

        // Edges first, then nodes over them; taken edges last among edges, so they are drawn over the others.
        sb.Append("<g class=\"edges\">\n");
        foreach (var route in layout.Routes.OrderBy(r => overlay?.IsTaken(r.Edge) ?? false))
        {
            Edge(sb, graph, route, overlay);
        }

        sb.Append("</g>\n<g class=\"nodes\">\n");
        foreach (var node in graph.Nodes)
        {
            Node(sb, layout.Boxes[node.Id], node, overlay);
        }

        sb.Append("</g>\n</svg>\n");
        return sb.ToString();
    }

    /// <summary>The fill and stroke of a node with a status.</summary>
    internal static (string Fill, string Stroke) Colors(string status) => status switch
    {
        "succeeded" or "completed" => ("#eef8f0", "#2e7d32"),
        "failed" => ("#fdeeee", "#c62828"),
        "running" or "scheduled" or "waiting" => ("#eef4fb", "#1565c0"),
        "waiting_approval" or "blocked" => ("#fdf6e3", "#b7791f"),
        "cancelled" => ("#f1f1f1", "#757575"),
        "not_run" => ("#ffffff", "#9aa5b1"),
        _ => ("#ffffff", Muted),
    };

    private static void Node(StringBuilder sb, SvgLayout.Box box, GraphNode node, JobGraphOverlay? overlay)
    {
        var state = overlay?.StateOf(node.Id);
        var classes = $"node k-{GraphText.ClassName(node.Kind)}" + (state is null ? "" : $" s-{GraphText.ClassName(state.Status)}");
        var (fill, stroke) = state is null ? ("#ffffff", Muted) : Colors(state.Status);
        sb.Append("<g class=\"").Append(classes).Append('"');
        if (node.IsStep) sb.Append(" data-step-id=\"").Append(Xml(node.Id)).Append('"');
        else sb.Append(" data-node=\"").Append(node.Kind).Append('"');
        if (state is not null) sb.Append(" data-status=\"").Append(Xml(state.Status)).Append("\" data-attempts=\"").Append(state.Attempts.ToString(CultureInfo.InvariantCulture)).Append('"');
        sb.Append(" transform=\"translate(").Append(Num(box.X)).Append(' ').Append(Num(box.Y)).Append(")\">");
        var full = GraphText.Lines(node, overlay);
        sb.Append("<title>").Append(Xml(node.IsStep ? $"step {string.Join("; ", full)}" : string.Join(": ", full))).Append("</title>");
        var rx = node.IsStep ? 6 : box.Height / 2;
        sb.Append(CultureInfo.InvariantCulture, $"<rect width=\"{Num(box.Width)}\" height=\"{Num(box.Height)}\" rx=\"{Num(rx)}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{(node.Kind is "parallel" or "foreach" ? "2.5" : "1.5")}\"");
        if (state?.Status == "not_run") sb.Append(" stroke-dasharray=\"4 3\"");
        sb.Append("/>");
        var lines = box.Lines;
        for (var i = 0; i < lines.Count; i++)
        {
            var isStatus = overlay is not null && i == lines.Count - 1;
            var cls = i == 0 ? "node-label" : isStatus ? "node-status" : "node-detail";
            var x = node.IsStep ? "10" : Num(box.Width / 2);
            var anchor = node.IsStep ? "" : " text-anchor=\"middle\"";
            var y = Num(node.IsStep ? 20 + i * 16 : 18 + i * 16);
            var style = i == 0 ? $" font-weight=\"600\" fill=\"{Ink}\"" : isStatus ? $" font-style=\"italic\" fill=\"{stroke}\"" : $" font-size=\"11\" fill=\"{Muted}\"";
            sb.Append(CultureInfo.InvariantCulture, $"<text class=\"{cls}\" x=\"{x}\" y=\"{y}\"{anchor}{style}>").Append(Xml(lines[i])).Append("</text>");
        }

        sb.Append("</g>\n");
    }

    private static void Edge(StringBuilder sb, WorkflowGraph graph, SvgLayout.Route route, JobGraphOverlay? overlay)
    {
        var e = route.Edge;
        var taken = overlay?.IsTaken(e) ?? false;
        var classes = $"edge e-{GraphText.Kind(e.Kind)}" + (taken ? " taken" : "") + (e.IsBackEdge ? " loop" : "");
        sb.Append("<g class=\"").Append(classes).Append("\" data-from=\"").Append(Xml(e.From)).Append("\" data-to=\"").Append(Xml(e.To)).Append("\">");
        var from = graph.FindNode(e.From)!.Label;
        var to = graph.FindNode(e.To)!.Label;
        sb.Append("<title>").Append(Xml($"{from} → {to}{(e.Label is null ? "" : $": {e.Label}")}{(taken ? " (taken)" : "")}")).Append("</title>");
        var d = new StringBuilder();
        for (var i = 0; i < route.Points.Count; i++)
        {
            d.Append(i == 0 ? "M " : " L ").Append(Num(route.Points[i].X)).Append(' ').Append(Num(route.Points[i].Y));
        }

        sb.Append(CultureInfo.InvariantCulture, $"<path d=\"{d}\" fill=\"none\" stroke=\"{(taken ? TakenColor : EdgeColor)}\" stroke-width=\"{(taken ? "3" : "1.5")}\"");
        if (e.IsBackEdge || e.IsSelfLoop || e.Kind is GraphEdgeKind.Denied or GraphEdgeKind.Rejected or GraphEdgeKind.Expired) sb.Append(" stroke-dasharray=\"6 4\"");
        sb.Append(" marker-end=\"url(#").Append(taken ? "ordo-arrow-taken" : "ordo-arrow").Append(")\"/>");
        if (e.Label is { } label && route.LabelAt is { } at)
        {
            var text = GraphText.Clip(label, EdgeLabelMax);
            var tw = TextWidth(text) * 11 / 12;
            var left = route.LabelAnchor == "middle" ? at.X - tw / 2 : at.X;
            sb.Append(CultureInfo.InvariantCulture, $"<rect class=\"edge-label-bg\" x=\"{Num(left - 3)}\" y=\"{Num(at.Y - 10)}\" width=\"{Num(tw + 6)}\" height=\"14\" rx=\"3\" fill=\"#ffffff\" fill-opacity=\"0.9\"/>");
            sb.Append(CultureInfo.InvariantCulture, $"<text class=\"edge-label\" x=\"{Num(at.X)}\" y=\"{Num(at.Y + 1)}\" text-anchor=\"{route.LabelAnchor}\" font-size=\"11\" fill=\"{(taken ? TakenColor : Muted)}\">").Append(Xml(text)).Append("</text>");
        }

        sb.Append("</g>\n");
    }

    /// <summary>What the drawing shows, in words: the steps and, with a job, each one's status and the path taken.</summary>
    private static string Description(WorkflowGraph graph, JobGraphOverlay? overlay)
    {
        var steps = graph.Nodes.Where(n => n.IsStep).ToList();
        if (overlay is null) return $"{steps.Count} steps: {string.Join(", ", steps.Select(s => $"{s.Label} ({s.Kind})"))}.";
        var taken = graph.Edges.Where(overlay.IsTaken).Select(e => $"{graph.FindNode(e.From)!.Label} → {graph.FindNode(e.To)!.Label}");
        return $"Steps: {string.Join(", ", steps.Select(s => $"{s.Label} {GraphText.Status(s, overlay.StateOf(s.Id))}"))}. Edges taken: {string.Join(", ", taken)}.";
    }

    /// <summary>An estimate of a text's width at 12 px: enough to size boxes without a font engine.</summary>
    internal static double TextWidth(string text) => text.Length * 7.0;

    private static string Num(double v) => Math.Round(v, 1).ToString("0.#", CultureInfo.InvariantCulture);

    /// <summary>Text as XML character data or attribute value: markup characters escaped, characters XML does not allow dropped.</summary>
    internal static string Xml(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            switch (c)
            {
                case '&': sb.Append("&amp;"); break;
                case '<': sb.Append("&lt;"); break;
                case '>': sb.Append("&gt;"); break;
                case '"': sb.Append("&quot;"); break;
                case '\'': sb.Append("&#39;"); break;
                case '\t' or '\n' or '\r': sb.Append(' '); break;
                default:
                    if (c >= 0x20 && c != '\uFFFE' && c != '\uFFFF') sb.Append(c);
                    break;
            }
        }

        return sb.ToString();
    }
}
