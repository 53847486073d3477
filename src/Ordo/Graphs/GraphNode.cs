namespace Ordo.Graphs;

/// <summary>A node of a workflow graph: a step, or the start, the end or the failure of the job.</summary>
/// <param name="Id">The step id, or <see cref="WorkflowGraph.StartId"/>, <see cref="WorkflowGraph.EndId"/>, <see cref="WorkflowGraph.FailId"/>.</param>
/// <param name="Kind">The step kind (<c>agent</c>, <c>tool</c>, <c>parallel</c>, …), or <c>start</c>, <c>end</c>, <c>fail</c>.</param>
/// <param name="Label">The text that names the node: the step id, or start, end, fail.</param>
/// <param name="Details">Lines that say what the step does: its agent, tool, pattern, retry and loop bounds.</param>
public sealed record GraphNode(string Id, string Kind, string Label, IReadOnlyList<string> Details)
{
    /// <summary>Whether the node is a step (not the start, end or failure).</summary>
    public bool IsStep => Kind is not ("start" or "end" or "fail");
}
