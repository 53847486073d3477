using System.Globalization;
using System.Text;
using Ordo.State;

namespace Ordo.Graphs;

/// <summary>Draws a workflow graph as a Mermaid flowchart, top to bottom; with a job, the path taken as thick edges and each step's status in its node and as a class.</summary>
internal static class MermaidRenderer
{
    public static string Render(WorkflowGraph graph, JobGraphOverlay? overlay)
    {
        var ids = graph.Nodes.Select((n, i) => (n.Id, Key: "n" + i.ToString(CultureInfo.InvariantCulture))).ToDictionary(x => x.Id, x => x.Key, StringComparer.Ordinal);
        var sb = new StringBuilder();
        sb.Append("flowchart TD\n");
        sb.Append("  %% ").Append(Comment(graph.Workflow)).Append(overlay is null ? "" : $" — job {overlay.JobId} ({overlay.Status.ToWire()})").Append('\n');
        foreach (var node in graph.Nodes)
        {
            var label = string.Join("<br/>", GraphText.Lines(node, overlay).Select(l => Escape(GraphText.Clip(l, 60))));
            var (open, close) = node.Kind switch
            {
                "start" or "end" or "fail" => ("((", "))"),
                "gate" => ("{", "}"),
                "approval" => ("{{", "}}"),
                "parallel" or "foreach" or "workflow" or "plan" or "supervise" or "board" or "auction" => ("[[", "]]"),
                _ => ("[", "]"),
            };
            sb.Append("  ").Append(ids[node.Id]).Append(open).Append('"').Append(label).Append('"').Append(close).Append('\n');
        }

        var taken = new List<int>();
        for (var i = 0; i < graph.Edges.Count; i++)
        {
            var e = graph.Edges[i];
            var isTaken = overlay?.IsTaken(e) ?? false;
            if (isTaken) taken.Add(i);
            var arrow = isTaken ? "==>" : e.IsBackEdge || e.IsSelfLoop ? "-.->" : "-->";
            sb.Append("  ").Append(ids[e.From]).Append(' ').Append(arrow);
            if (e.Label is { } label) sb.Append("|\"").Append(Escape(GraphText.Clip(label, 60))).Append("\"|");
            sb.Append(' ').Append(ids[e.To]).Append('\n');
        }

        if (overlay is not null)
        {
            foreach (var (status, style) in Styles)
            {
                sb.Append("  classDef ").Append(status).Append(' ').Append(style).Append('\n');
            }

            foreach (var group in graph.Nodes.GroupBy(n => overlay.StateOf(n.Id).Status, StringComparer.Ordinal))
            {
                var cls = GraphText.ClassName(group.Key);
                if (!Styles.Any(s => s.Status == cls)) continue;
                sb.Append("  class ").Append(string.Join(',', group.Select(n => ids[n.Id]))).Append(' ').Append(cls).Append('\n');
            }

            if (taken.Count > 0)
            {
                sb.Append("  linkStyle ").Append(string.Join(',', taken.Select(i => i.ToString(CultureInfo.InvariantCulture)))).Append(" stroke:#2e7d32,stroke-width:3px\n");
            }
        }

        return sb.ToString();
    }

    private static readonly (string Status, string Style)[] Styles =
    [
        ("succeeded", "fill:#eef8f0,stroke:#2e7d32"),
        ("completed", "fill:#eef8f0,stroke:#2e7d32"),
        ("failed", "fill:#fdeeee,stroke:#c62828"),
        ("running", "fill:#eef4fb,stroke:#1565c0"),
        ("scheduled", "fill:#eef4fb,stroke:#1565c0"),
        ("waiting", "fill:#eef4fb,stroke:#1565c0"),
        ("blocked", "fill:#fdf6e3,stroke:#b7791f"),
        ("waiting_approval", "fill:#fdf6e3,stroke:#b7791f"),
        ("cancelled", "fill:#f1f1f1,stroke:#757575"),
        ("not_run", "fill:#ffffff,stroke:#9aa5b1,stroke-dasharray:4 3"),
    ];

    /// <summary>Text inside a quoted Mermaid label: quotes, pipes, angle brackets and <c>#</c> as Mermaid entity codes, no line breaks.</summary>
    internal static string Escape(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            sb.Append(c switch
            {
                '#' => "#35;",
                '"' => "#quot;",
                '<' => "#lt;",
                '>' => "#gt;",
                '&' => "#amp;",
                '|' => "#124;",
                '\r' or '\n' or '\t' => " ",
                _ => c.ToString(),
            });
        }

        return sb.ToString();
    }

    private static string Comment(string text) => text.Replace('\n', ' ').Replace('\r', ' ');
}
