using System.Globalization;
using System.Text;

namespace Ordo.Graphs;

/// <summary>Draws a workflow graph in Graphviz DOT, top to bottom; with a job, the path taken as bold green edges and each step's status in its node and as a class.</summary>
internal static class DotRenderer
{
    public static string Render(WorkflowGraph graph, JobGraphOverlay? overlay)
    {
        var ids = graph.Nodes.Select((n, i) => (n.Id, Key: "n" + i.ToString(CultureInfo.InvariantCulture))).ToDictionary(x => x.Id, x => x.Key, StringComparer.Ordinal);
        var sb = new StringBuilder();
        sb.Append("digraph ").Append(Quote(graph.Workflow)).Append(" {\n");
        sb.Append("  label=").Append(Quote(overlay is null ? graph.Workflow : $"{graph.Workflow} — job {overlay.JobId}")).Append(";\n");
        sb.Append("  labelloc=t;\n  rankdir=TB;\n");
        sb.Append("  node [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", color=\"#52606d\", fontname=\"Helvetica\", fontsize=11];\n");
        sb.Append("  edge [color=\"#8a96a3\", fontname=\"Helvetica\", fontsize=10];\n");
        foreach (var node in graph.Nodes)
        {
            var lines = GraphText.Lines(node, overlay);
            var attrs = new List<string> { "label=" + Quote(string.Join('\n', lines)) };
            var shape = node.Kind switch
            {
                "start" or "end" or "fail" => "ellipse",
                "gate" => "diamond",
                "approval" => "hexagon",
                "parallel" or "foreach" or "workflow" or "plan" or "supervise" or "board" or "auction" => "box3d",
                _ => null,
            };
            if (shape is not null) attrs.Add("shape=" + shape);
            var classes = $"node k-{GraphText.ClassName(node.Kind)}";
            if (overlay is not null)
            {
                var status = overlay.StateOf(node.Id).Status;
                classes += $" s-{GraphText.ClassName(status)}";
                var (fill, stroke) = SvgRenderer.Colors(status);
                attrs.Add($"fillcolor=\"{fill}\"");
                attrs.Add($"color=\"{stroke}\"");
                if (status == "not_run") attrs.Add("style=\"rounded,filled,dashed\"");
            }

            attrs.Add("class=" + Quote(classes));
            sb.Append("  ").Append(ids[node.Id]).Append(" [").Append(string.Join(", ", attrs)).Append("];\n");
        }

        foreach (var e in graph.Edges)
        {
            var attrs = new List<string>();
            if (e.Label is { } label) attrs.Add("label=" + Quote(label));
            if (e.IsBackEdge || e.IsSelfLoop) attrs.Add("style=dashed");
            var classes = $"edge e-{GraphText.Kind(e.Kind)}";
            if (overlay?.IsTaken(e) ?? false)
            {
                attrs.Add("color=\"#2e7d32\"");
                attrs.Add("penwidth=2.5");
                classes += " taken";
            }

            attrs.Add("class=" + Quote(classes));
            sb.Append("  ").Append(ids[e.From]).Append(" -> ").Append(ids[e.To]).Append(" [").Append(string.Join(", ", attrs)).Append("];\n");
        }

        sb.Append("}\n");
        return sb.ToString();
    }

    /// <summary>A DOT double-quoted string: backslashes and quotes escaped, line breaks as <c>\n</c>.</summary>
    internal static string Quote(string text)
    {
        var sb = new StringBuilder(text.Length + 2).Append('"');
        foreach (var c in text)
        {
            switch (c)
            {
                case '\\': sb.Append("\\\\"); break;
                case '"': sb.Append("\\\""); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': break;
                default: sb.Append(c); break;
            }
        }

        return sb.Append('"').ToString();
    }
}
