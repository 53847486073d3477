using Ordo.Events;
using Ordo.State;
using Ordo.Workflows;

namespace Ordo.Graphs;

/// <summary>
/// What one job did on its workflow's graph: each node's status and attempts, and the edges it took. Derived from the
/// job's state (statuses, attempts) and its events: an edge is taken when the step's recorded route went along it
/// (<c>StepSucceeded.next</c>), when a coordinating step started a branch or an item along it, when an approval's expiry
/// or denial, or an escalation, followed it.
/// </summary>
public sealed class JobGraphOverlay
{
    private readonly Dictionary<string, GraphNodeState> _nodes;
    private readonly HashSet<GraphEdge> _taken;

    private JobGraphOverlay(JobId job, JobStatus status, Dictionary<string, GraphNodeState> nodes, HashSet<GraphEdge> taken)
    {
        JobId = job;
        Status = status;
        _nodes = nodes;
        _taken = taken;
    }

    /// <summary>The job.</summary>
    public JobId JobId { get; }

    /// <summary>The job's status.</summary>
    public JobStatus Status { get; }

    /// <summary>The edges the job took.</summary>
    public IReadOnlyCollection<GraphEdge> Taken => _taken;

    /// <summary>What the job did at a node (<see cref="GraphNodeState.NotRun"/> when it has not reached it).</summary>
    public GraphNodeState StateOf(string nodeId) => _nodes.GetValueOrDefault(nodeId) ?? GraphNodeState.NotRun;

    /// <summary>Whether the job took an edge.</summary>
    public bool IsTaken(GraphEdge edge) => _taken.Contains(edge);

    /// <summary>Builds the overlay of a job on the graph of the definition it ran.</summary>
    /// <param name="graph">The graph of <paramref name="workflow"/>.</param>
    /// <param name="workflow">The definition the job is pinned to.</param>
    /// <param name="state">The job's state.</param>
    /// <param name="events">The job's events, in order.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static JobGraphOverlay From(WorkflowGraph graph, WorkflowDefinition workflow, JobState state, IEnumerable<EventEnvelope> events)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(workflow);
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(events);

        var taken = new HashSet<GraphEdge>();
        void Mark(string from, string to, Func<GraphEdge, bool> which)
        {
            foreach (var e in graph.Edges)
            {
                if (e.From == from && e.To == to && which(e)) taken.Add(e);
            }
        }

        // Where the end of a flow (or a fail inside it) leads from a step that ran in a scope.
        string FlowEnd(string? scope, bool failed)
        {
            if (OwnerOf(scope) is not { } owner) return failed ? WorkflowGraph.FailId : WorkflowGraph.EndId;
            return !failed && workflow.FindStep(owner) is ParallelStep { Join: { } join } ? join : owner;
        }

        foreach (var e in events)
        {
            switch (e.Type)
            {
                case EventTypes.StepScheduled when e.StepId is { } step:
                {
                    var p = e.GetPayload<StepScheduledPayload>();
                    switch (p.Reason)
                    {
                        case "entry": Mark(WorkflowGraph.StartId, step, x => x.Kind == GraphEdgeKind.Entry); break;
                        case "branch" or "item" when p.From is { } owner: Mark(owner, step, x => x.Kind is GraphEdgeKind.Branch or GraphEdgeKind.Item); break;
                        case "expired" when p.From is { } from: Mark(from, step, x => x.Kind == GraphEdgeKind.Expired); break;
                    }

                    break;
                }

                case EventTypes.StepSucceeded when e.StepId is { } step:
                {
                    var next = e.GetPayload<StepSucceededPayload>().Next;
                    if (next is null) break; // held for an approval: its route is recorded when it is granted
                    var target = next.Count == 0 ? Route.End : next[0];
                    var to = target switch
                    {
                        Route.End => FlowEnd(e.Scope, failed: false),
                        Route.Fail => FlowEnd(e.Scope, failed: true),
                        _ => target,
                    };
                    Mark(step, to, x => x.Kind is not (GraphEdgeKind.Branch or GraphEdgeKind.Item or GraphEdgeKind.Escalation or GraphEdgeKind.Denied or GraphEdgeKind.Entry));
                    break;
                }

                case EventTypes.Escalated when e.StepId is { } step:
                    Mark(step, step, x => x.Kind == GraphEdgeKind.Escalation);
                    break;
                case EventTypes.JobFailed:
                {
                    var p = e.GetPayload<JobFailedPayload>();
                    if (p.Step is { } step && p.Error is "approval_denied" or "approval_expired")
                    {
                        Mark(step, WorkflowGraph.FailId, x => x.Kind == GraphEdgeKind.Denied);
                    }

                    break;
                }
            }
        }

        return new JobGraphOverlay(state.JobId, state.Status, NodeStates(state), taken);
    }

    /// <summary>The coordinating step that owns a scope (its innermost branch or item), or null at top level.</summary>
    internal static string? OwnerOf(string? scope)
    {
        if (string.IsNullOrEmpty(scope)) return null;
        var ownerKey = WorkKeys.SplitScope(scope).OwnerWorkKey;
        var last = ownerKey[(ownerKey.LastIndexOf('/') + 1)..];
        var hash = last.LastIndexOf('#');
        return hash < 0 ? last : last[..hash];
    }

    private static readonly string[] Precedence = ["running", "waiting", "scheduled", "waiting_approval", "blocked", "failed", "succeeded", "cancelled"];

    /// <summary>Each step's status over its visits in every scope, and the end and failure nodes from the job's status.</summary>
    private static Dictionary<string, GraphNodeState> NodeStates(JobState state)
    {
        var nodes = new Dictionary<string, GraphNodeState>(StringComparer.Ordinal);
        var waiting = state.Approvals.Values.Where(a => a.IsPending && a.StepId is not null).Select(a => a.StepId!).ToHashSet(StringComparer.Ordinal);
        // A parallel step records each branch's outcome as steps.BRANCH beside it (for its join); that is not a visit.
        var branchSummaries = state.Patterns.Values.Where(p => p.Kind == "parallel")
            .SelectMany(p => p.Labels.Select(l => WorkKeys.VisitKey(p.Scope, l))).ToHashSet(StringComparer.Ordinal);
        var visits = state.Steps.Where(kv => !branchSummaries.Contains(kv.Key)).Select(kv => kv.Value);
        foreach (var group in visits.GroupBy(s => s.Id, StringComparer.Ordinal))
        {
            var statuses = group.Select(s => s.Status).ToHashSet(StringComparer.Ordinal);
            if (waiting.Contains(group.Key)) statuses.Add("waiting_approval");
            var status = Precedence.FirstOrDefault(statuses.Contains) ?? group.First().Status;
            if (state.Status.IsTerminal() && status is "running" or "waiting" or "scheduled" or "blocked" or "waiting_approval") status = "cancelled";
            nodes[group.Key] = new GraphNodeState(status, group.Sum(s => s.TotalAttempts), group.Sum(s => s.Visit));
        }

        nodes[WorkflowGraph.StartId] = new GraphNodeState("submitted", 0, 1);
        if (state.Status == JobStatus.Completed) nodes[WorkflowGraph.EndId] = new GraphNodeState("completed", 0, 1);
        if (state.Status == JobStatus.Failed) nodes[WorkflowGraph.FailId] = new GraphNodeState("failed", 0, 1);
        return nodes;
    }
}
