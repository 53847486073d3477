using System.Globalization;
using Ordo.Workflows;

namespace Ordo.Graphs;

/// <summary>
/// Walks a workflow the way the engine runs it (see <c>CommitPlanner</c>): from the entry, each step's routes and the
/// steps its kind starts, in the flow each step runs in — the job's own flow, where <c>end</c> completes the job, or a
/// branch or item flow, where the end of the flow leads to the join step (or back to the coordinating step).
/// </summary>
internal static class WorkflowGraphBuilder
{
    /// <summary>A flow: where its end leads, where a <c>fail</c> inside it leads, and the coordinating step that owns it.</summary>
    private sealed record Flow(string End, string Fail, string? Owner, string? EndLabel, string? FailLabel);

    public static WorkflowGraph Build(WorkflowDefinition workflow)
    {
        var edges = new List<GraphEdge>();
        var seen = new HashSet<(string From, string To, GraphEdgeKind Kind, string? Label)>();
        void Add(GraphEdge e)
        {
            if (seen.Add((e.From, e.To, e.Kind, e.Label))) edges.Add(e);
        }

        var top = new Flow(WorkflowGraph.EndId, WorkflowGraph.FailId, null, null, null);
        var visited = new HashSet<(string Step, Flow Flow)>();
        var work = new Queue<(string Step, Flow Flow)>();
        void Visit(string step, Flow flow)
        {
            if (workflow.FindStep(step) is not null && visited.Add((step, flow))) work.Enqueue((step, flow));
        }

        Add(new GraphEdge(WorkflowGraph.StartId, workflow.Entry.Id, GraphEdgeKind.Entry, null));
        Visit(workflow.Entry.Id, top);
        Drain();

        // A step no route reaches cannot run; it is still drawn, with its own routes, so the drawing shows it.
        foreach (var s in workflow.Steps)
        {
            if (!visited.Any(v => v.Step == s.Id))
            {
                Visit(s.Id, top);
                Drain();
            }
        }

        return new WorkflowGraph(workflow.Ref, Nodes(workflow, edges), MarkBackEdges(workflow, edges));

        void Drain()
        {
            while (work.Count > 0)
            {
                var (id, flow) = work.Dequeue();
                Follow(workflow, workflow.GetStep(id), flow, Add, Visit);
            }
        }
    }

    /// <summary>The edges out of one step in one flow, and the steps they lead to.</summary>
    private static void Follow(WorkflowDefinition workflow, StepDefinition step, Flow flow, Action<GraphEdge> add, Action<string, Flow> visit)
    {
        var id = step.Id;
        GraphEdge Edge(string target, GraphEdgeKind kind, string? label)
        {
            var (to, extra) = target switch
            {
                Route.End => (flow.End, flow.EndLabel),
                Route.Fail => (flow.Fail, flow.FailLabel),
                _ => (target, null),
            };
            // The end of a branch or item flow is not the job's end: it leads to the join (or back to the coordinating step).
            if (target == Route.End && flow.Owner is not null) kind = GraphEdgeKind.BranchEnd;
            return new GraphEdge(id, to, kind, extra is null ? label : label is null ? extra : $"{label}; {extra}") { Owner = flow.Owner };
        }

        switch (step)
        {
            case ParallelStep p:
            {
                var joinLabel = $"join {p.JoinPolicy}";
                var branchFlow = new Flow(p.Join ?? id, id, id, joinLabel, "branch fails");
                foreach (var b in p.Branches)
                {
                    add(new GraphEdge(id, b, GraphEdgeKind.Branch, "branch") { Owner = flow.Owner });
                    visit(b, branchFlow);
                }

                if (p.Join is { } join)
                {
                    // With a join step the parallel step goes on to it once the branches are joined; its own routes are not taken.
                    visit(join, flow);
                    return;
                }

                break;
            }

            case ForeachStep { Do: { } body }:
                add(new GraphEdge(id, body, GraphEdgeKind.Item, "each item") { Owner = flow.Owner });
                visit(body, new Flow(id, id, id, "item done", "item fails"));
                break;
            case GateStep g:
                add(Edge(g.OnReject, GraphEdgeKind.Rejected, "rejected"));
                visit(g.OnReject, flow);
                break;
            case PlanStep { Fallback: { } fallback }:
                add(Edge(fallback, GraphEdgeKind.Fallback, "plan rejected"));
                visit(fallback, flow);
                break;
            case ApprovalStep a:
                // A denial fails the job wherever the step runs; an expiry does what on_expire says.
                if (a.OnExpire is Route.Fail or "deny")
                {
                    add(new GraphEdge(id, WorkflowGraph.FailId, GraphEdgeKind.Denied, "denied or expired") { Owner = flow.Owner });
                }
                else
                {
                    add(new GraphEdge(id, WorkflowGraph.FailId, GraphEdgeKind.Denied, "denied") { Owner = flow.Owner });
                    if (a.OnExpire != "approve")
                    {
                        add(Edge(a.OnExpire, GraphEdgeKind.Expired, "expired"));
                        visit(a.OnExpire, flow);
                    }
                }

                break;
        }

        if (step.OnFailure == FailureAction.Escalate)
        {
            add(new GraphEdge(id, id, GraphEdgeKind.Escalation, "fails: escalate") { Owner = flow.Owner });
        }

        // The first route whose condition holds is taken; none: the flow ends.
        foreach (var route in step.Next)
        {
            if (route.When is null)
            {
                add(Edge(route.Target, GraphEdgeKind.Route, step.Next.Count > 1 ? "otherwise" : null));
                visit(route.Target, flow);
                return;
            }

            add(Edge(route.Target, GraphEdgeKind.Condition, "when " + route.When.Source.Trim()));
            visit(route.Target, flow);
        }

        add(step.Next.Count == 0 ? Edge(Route.End, GraphEdgeKind.Route, null) : Edge(Route.End, GraphEdgeKind.Otherwise, "otherwise"));
    }

    /// <summary>The start, the steps in file order with what each does, and the end and failure when an edge reaches them.</summary>
    private static List<GraphNode> Nodes(WorkflowDefinition workflow, List<GraphEdge> edges)
    {
        var nodes = new List<GraphNode> { new(WorkflowGraph.StartId, "start", "start", []) };
        nodes.AddRange(workflow.Steps.Select(s => new GraphNode(s.Id, s.Kind, s.Id, Details(workflow, s))));
        if (edges.Any(e => e.To == WorkflowGraph.EndId)) nodes.Add(new GraphNode(WorkflowGraph.EndId, "end", "end", []));
        if (edges.Any(e => e.To == WorkflowGraph.FailId)) nodes.Add(new GraphNode(WorkflowGraph.FailId, "fail", "fail", []));
        return nodes;
    }

    /// <summary>Marks the edges that go back to a node still being walked from the start (depth first, in edge order): the loops.</summary>
    private static List<GraphEdge> MarkBackEdges(WorkflowDefinition workflow, List<GraphEdge> edges)
    {
        var outOf = edges.Select((e, i) => (e, i)).GroupBy(x => x.e.From, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Select(x => x.i).ToList(), StringComparer.Ordinal);
        var state = new Dictionary<string, int>(StringComparer.Ordinal); // 1: on the path, 2: done
        var back = new HashSet<int>();
        void Walk(string node)
        {
            state[node] = 1;
            foreach (var i in outOf.GetValueOrDefault(node) ?? [])
            {
                var to = edges[i].To;
                if (to == node) continue;
                if (!state.TryGetValue(to, out var s)) Walk(to);
                else if (s == 1) back.Add(i);
            }

            state[node] = 2;
        }

        Walk(WorkflowGraph.StartId);
        foreach (var s in workflow.Steps)
        {
            if (!state.ContainsKey(s.Id)) Walk(s.Id);
        }

        return [.. edges.Select((e, i) => back.Contains(i) ? e with { IsBackEdge = true } : e)];
    }

    /// <summary>What a step does, in a few short lines.</summary>
    private static List<string> Details(WorkflowDefinition workflow, StepDefinition step)
    {
        var lines = new List<string>();
        string AgentRef(string name) => workflow.Agents.TryGetValue(name, out var a) ? a.Ref : name;
        string List(IEnumerable<string> names) => string.Join(", ", names);
        switch (step)
        {
            case AgentStep a:
                lines.Add($"agent {AgentRef(a.Agent)}");
                if (workflow.Agents.TryGetValue(a.Agent, out var def) && def.Output is { } output) lines.Add($"→ {output}");
                break;
            case ToolStep t:
                lines.Add($"tool {t.Tool}");
                if (t.Output is { } o) lines.Add($"→ {o}");
                break;
            case TransformStep t:
                lines.Add($"transform → {List(t.Set.Select(kv => kv.Key))}");
                break;
            case GateStep g:
                lines.Add($"gate {g.Artifact}");
                if (g.Validator is { } v) lines.Add($"validator {v}");
                if (g.Check is { } c) lines.Add($"check {c.Source.Trim()}");
                break;
            case ApprovalStep ap:
                lines.Add($"approval: {ap.Count} × {ap.Role}");
                if (ap.Expires is { } ex) lines.Add($"expires {Durations.Format(ex)}");
                break;
            case ParallelStep p:
                lines.Add($"parallel: {List(p.Branches)}");
                lines.Add(p.Join is { } j ? $"join {p.JoinPolicy} → {j}" : $"join {p.JoinPolicy}");
                break;
            case ForeachStep f:
                lines.Add($"foreach: {(f.Do ?? f.DoWorkflow?.ToString())} per item");
                lines.Add(string.Create(CultureInfo.InvariantCulture, $"max_concurrency {f.MaxConcurrency}"));
                break;
            case SubWorkflowStep w:
                lines.Add($"workflow {w.Workflow}");
                break;
            case PlanStep pl:
                lines.Add($"plan by {AgentRef(pl.Agent)}");
                lines.Add(string.Create(CultureInfo.InvariantCulture, $"catalog: {List(pl.Catalog)}; ≤ {pl.MaxSteps} steps"));
                break;
            case SuperviseStep sv:
                lines.Add($"supervise by {AgentRef(sv.Agent)}");
                lines.Add(string.Create(CultureInfo.InvariantCulture, $"workers: {List(sv.Workers)}; ≤ {sv.MaxRounds} rounds"));
                break;
            case BoardStep b:
                lines.Add(string.Create(CultureInfo.InvariantCulture, $"board: {b.Rules.Count} rules; ≤ {b.MaxFirings} firings"));
                lines.AddRange(b.Rules.Select(r => $"when {r.When.Source.Trim()} → {r.Run}"));
                lines.Add($"until {b.Until.Source.Trim()}");
                break;
            case AuctionStep au:
                lines.Add($"auction: {List(au.Bidders)}");
                break;
            case CodeStep code:
                lines.Add(code.Output is { } co ? $"code → {co}" : "code");
                break;
        }

        if (step.Retry.MaxAttempts > 1) lines.Add(string.Create(CultureInfo.InvariantCulture, $"retry ≤ {step.Retry.MaxAttempts} attempts"));
        if (step.MaxIterations is { } n) lines.Add(string.Create(CultureInfo.InvariantCulture, $"loop ≤ {n} visits"));
        return lines;
    }
}
