namespace Ordo.Graphs;

/// <summary>An edge of a workflow graph: a way the engine can go from one node to another.</summary>
/// <param name="From">The node it leaves.</param>
/// <param name="To">The node it reaches.</param>
/// <param name="Kind">Why it exists.</param>
/// <param name="Label">The text drawn on it (a route's condition, <c>otherwise</c>, <c>join all</c>, …), or null.</param>
public sealed record GraphEdge(string From, string To, GraphEdgeKind Kind, string? Label)
{
    /// <summary>The coordinating step (parallel or foreach) whose branch or item this edge ends, when it leaves a step that runs inside one; null at top level.</summary>
    public string? Owner { get; init; }

    /// <summary>Whether the edge goes back to a step that runs before it (a loop), so a drawing does not lay it out downward.</summary>
    public bool IsBackEdge { get; init; }

    /// <summary>Whether the edge leaves and reaches the same node.</summary>
    public bool IsSelfLoop => From == To;
}
