using Ordo.Workflows;

namespace Ordo.Graphs;

/// <summary>
/// The graph of a workflow: a node per step (plus the start, the end and the failure of the job) and an edge for each
/// way the engine can go from one to another: routes with their conditions, pattern branches and joins, foreach items,
/// gate rejections, plan fallbacks, approval expiry and denial, escalations, and loops. Immutable.
/// </summary>
public sealed class WorkflowGraph
{
    /// <summary>The id of the start node.</summary>
    public const string StartId = "#start";
    /// <summary>The id of the node a flow reaches when the job completes.</summary>
    public const string EndId = "#end";
    /// <summary>The id of the node a flow reaches when the job fails.</summary>
    public const string FailId = "#fail";

    private readonly Dictionary<string, GraphNode> _byId;

    internal WorkflowGraph(string workflow, IReadOnlyList<GraphNode> nodes, IReadOnlyList<GraphEdge> edges)
    {
        Workflow = workflow;
        Nodes = nodes;
        Edges = edges;
        _byId = nodes.ToDictionary(n => n.Id, StringComparer.Ordinal);
    }

    /// <summary>The workflow as <c>name@version</c>.</summary>
    public string Workflow { get; }

    /// <summary>The nodes: the start, the steps in file order, then the end and the failure when an edge reaches them.</summary>
    public IReadOnlyList<GraphNode> Nodes { get; }

    /// <summary>The edges, in the order the engine would consider them.</summary>
    public IReadOnlyList<GraphEdge> Edges { get; }

    /// <summary>Finds a node by id.</summary>
    public GraphNode? FindNode(string id) => _byId.GetValueOrDefault(id);

    /// <summary>Builds the graph of a workflow definition.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="workflow"/> is null.</exception>
    public static WorkflowGraph From(WorkflowDefinition workflow)
    {
        ArgumentNullException.ThrowIfNull(workflow);
        return WorkflowGraphBuilder.Build(workflow);
    }
}
