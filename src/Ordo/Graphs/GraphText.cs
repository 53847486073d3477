using System.Globalization;

namespace Ordo.Graphs;

/// <summary>The words every drawing shows: a node's lines and its status, an edge's label.</summary>
internal static class GraphText
{
    /// <summary>The node's status line with a job: <c>succeeded · 2 attempts · 3 runs</c>.</summary>
    public static string Status(GraphNode node, GraphNodeState state)
    {
        var text = state.StatusText;
        if (!node.IsStep) return text;
        if (state.Attempts > 0) text += string.Create(CultureInfo.InvariantCulture, $" · {state.Attempts} attempt{(state.Attempts == 1 ? "" : "s")}");
        if (state.Runs > 1) text += string.Create(CultureInfo.InvariantCulture, $" · {state.Runs} runs");
        return text;
    }

    /// <summary>The lines drawn in a node: its label, what it does, and with a job its status.</summary>
    public static List<string> Lines(GraphNode node, JobGraphOverlay? overlay)
    {
        var lines = new List<string> { node.Label };
        lines.AddRange(node.Details);
        if (overlay is not null) lines.Add(node.IsStep ? "status: " + Status(node, overlay.StateOf(node.Id)) : Status(node, overlay.StateOf(node.Id)));
        return lines;
    }

    /// <summary>Cuts a text to <paramref name="max"/> characters, ending with an ellipsis when cut.</summary>
    public static string Clip(string text, int max) => text.Length <= max ? text : string.Concat(text.AsSpan(0, max - 1), "…");

    /// <summary>The CSS class of a status or kind: lower case, letters, digits, <c>-</c> and <c>_</c>.</summary>
    public static string ClassName(string text)
        => new([.. text.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '-')]);

    /// <summary>The edge kind as a word: <c>condition</c>, <c>branch-end</c>, …</summary>
    public static string Kind(GraphEdgeKind kind) => kind switch
    {
        GraphEdgeKind.BranchEnd => "branch-end",
        _ => kind.ToString().ToLowerInvariant(),
    };
}
