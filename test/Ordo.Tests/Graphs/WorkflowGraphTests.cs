using Ordo.Graphs;

namespace Ordo.Tests.Graphs;

/// <summary>The graph built from a workflow has exactly the edges the engine can take.</summary>
public sealed class WorkflowGraphTests
{
    public static TheoryData<string> Samples => [.. GraphWorkflows.Samples];

    private static async Task<WorkflowGraph> EveryPatternAsync()
        => WorkflowGraph.From(await GraphWorkflows.LoadAsync(GraphWorkflows.EveryPattern, ("child.yaml", GraphWorkflows.Child)));

    private static GraphEdge Edge(WorkflowGraph g, string from, string to) => Assert.Single(g.Edges, e => e.From == from && e.To == to);

    [Theory]
    [MemberData(nameof(Samples))]
    public async Task Sample_EveryStepIsANode_EveryEdgeJoinsNodes_AndEveryStepIsReachedFromTheStart(string sample)
    {
        var workflow = await GraphWorkflows.SampleAsync(sample);
        var g = WorkflowGraph.From(workflow);

        Assert.Equal(workflow.Steps.Select(s => s.Id), g.Nodes.Where(n => n.IsStep).Select(n => n.Id));
        Assert.All(g.Edges, e => Assert.True(g.FindNode(e.From) is not null && g.FindNode(e.To) is not null, $"{e.From} → {e.To}"));
        Assert.Equal(workflow.Entry.Id, Assert.Single(g.Edges, e => e.Kind == GraphEdgeKind.Entry).To);
        var reached = new HashSet<string> { WorkflowGraph.StartId };
        for (var grew = true; grew;)
        {
            grew = false;
            foreach (var e in g.Edges.Where(e => reached.Contains(e.From))) grew |= reached.Add(e.To);
        }

        Assert.All(workflow.Steps, s => Assert.Contains(s.Id, reached));
        Assert.Contains(WorkflowGraph.EndId, reached);
    }

    [Fact]
    public async Task InvoiceSample_HasTheConditionAndItsOtherwise_InTheOrderTheEngineTriesThem()
    {
        var g = WorkflowGraph.From(await GraphWorkflows.SampleAsync("samples/invoice-reconciliation/reconcile.yaml"));

        var fromReconcile = g.Edges.Where(e => e.From == "reconcile").ToList();
        Assert.Equal(["flag", "post"], fromReconcile.Select(e => e.To));
        Assert.Equal(GraphEdgeKind.Condition, fromReconcile[0].Kind);
        Assert.Equal("when artifacts.match_report.exceptions.length > 0", fromReconcile[0].Label);
        Assert.Equal("otherwise", fromReconcile[1].Label);
        Assert.Equal(GraphEdgeKind.Route, Edge(g, "post", WorkflowGraph.EndId).Kind);
        Assert.Null(g.FindNode(WorkflowGraph.FailId));
    }

    [Fact]
    public async Task Routes_AllConditional_EndTheFlowOtherwise()
    {
        var g = WorkflowGraph.From(await GraphWorkflows.LoadAsync("""
            ordo: 1
            workflow: w
            version: 1
            agents: { a: { kind: code, type: T.A } }
            steps:
              - { id: s, agent: a, next: [ { when: "input.go", to: t } ] }
              - { id: t, agent: a, next: fail }
            """));

        Assert.Equal(GraphEdgeKind.Otherwise, Edge(g, "s", WorkflowGraph.EndId).Kind);
        Assert.Equal(GraphEdgeKind.Route, Edge(g, "t", WorkflowGraph.FailId).Kind);
    }

    [Fact]
    public async Task Loop_RouteBackToAStepThatRan_IsABackEdge_AndTheStepNamesItsBound()
    {
        var g = await EveryPatternAsync();

        var loop = Edge(g, "again", "again");
        Assert.True(loop.IsSelfLoop);
        Assert.Equal("when steps.again.attempts < 2", loop.Label);
        Assert.Contains("loop ≤ 3 visits", g.FindNode("again")!.Details);
    }

    [Fact]
    public async Task Parallel_WithAJoin_StartsEachBranch_EachBranchEndsAtTheJoin_AndAFailInABranchReturnsToTheParallelStep()
    {
        var g = await EveryPatternAsync();

        Assert.Equal(GraphEdgeKind.Branch, Edge(g, "fan", "left").Kind);
        Assert.Equal(GraphEdgeKind.Branch, Edge(g, "fan", "right").Kind);
        Assert.Equal(GraphEdgeKind.Route, Edge(g, "left", "left2").Kind);
        var end = Edge(g, "left2", "merge");
        Assert.Equal((GraphEdgeKind.BranchEnd, "join quorum(1)", "fan"), (end.Kind, end.Label, end.Owner));
        var fail = Edge(g, "right", "fan");
        Assert.Equal("branch fails", fail.Label);
        Assert.True(fail.IsBackEdge);
        // The engine goes from the parallel step to its join, never along the parallel step's own routes.
        Assert.DoesNotContain(g.Edges, e => e.From == "fan" && e.Kind is GraphEdgeKind.Route or GraphEdgeKind.Condition);
        Assert.Equal("again", Edge(g, "merge", "again").To);
    }

    [Fact]
    public async Task Parallel_WithoutAJoin_BranchesReturnToTheParallelStep_WhichTakesItsOwnRoute()
    {
        var g = await EveryPatternAsync();

        Assert.Equal(GraphEdgeKind.Branch, Edge(g, "free", "solo").Kind);
        var back = Edge(g, "solo", "free");
        Assert.Equal((GraphEdgeKind.BranchEnd, "join all"), (back.Kind, back.Label));
        Assert.True(back.IsBackEdge);
        Assert.Equal(GraphEdgeKind.Route, Edge(g, "free", WorkflowGraph.EndId).Kind);
    }

    [Fact]
    public async Task Foreach_RunsItsBodyPerItem_AndEachItemReturnsToIt()
    {
        var g = await EveryPatternAsync();

        Assert.Equal((GraphEdgeKind.Item, "each item"), (Edge(g, "each", "item").Kind, Edge(g, "each", "item").Label));
        var done = Edge(g, "item", "each");
        Assert.Equal((GraphEdgeKind.BranchEnd, "item done", "each"), (done.Kind, done.Label, done.Owner));
        Assert.True(done.IsBackEdge);
        Assert.Equal(GraphEdgeKind.Route, Edge(g, "each", "check").Kind);
        Assert.Contains("foreach: item per item", g.FindNode("each")!.Details);
    }

    [Fact]
    public async Task GatePlanApprovalAndEscalation_HaveTheirOwnEdges()
    {
        var g = await EveryPatternAsync();

        Assert.Equal((GraphEdgeKind.Rejected, "rejected"), (Edge(g, "check", "research").Kind, Edge(g, "check", "research").Label));
        Assert.Equal((GraphEdgeKind.Fallback, "plan rejected"), (Edge(g, "research", "desk").Kind, Edge(g, "research", "desk").Label));
        Assert.Equal((GraphEdgeKind.Denied, "denied"), (Edge(g, "review", WorkflowGraph.FailId).Kind, Edge(g, "review", WorkflowGraph.FailId).Label));
        Assert.Equal(GraphEdgeKind.Expired, Edge(g, "review", "board").Kind);
        Assert.Equal(GraphEdgeKind.Route, Edge(g, "review", "boss").Kind);
        var escalation = Edge(g, "desk", "desk");
        Assert.Equal((GraphEdgeKind.Escalation, "fails: escalate"), (escalation.Kind, escalation.Label));
    }

    [Fact]
    public async Task Nodes_SayWhatEachPatternRuns()
    {
        var g = await EveryPatternAsync();

        Assert.Equal("agent", g.FindNode("first")!.Kind);
        Assert.Equal(["agent a@1", "→ note"], g.FindNode("first")!.Details);
        Assert.Contains("parallel: left, right", g.FindNode("fan")!.Details);
        Assert.Contains("join quorum(1) → merge", g.FindNode("fan")!.Details);
        Assert.Contains("approval: 2 × approver", g.FindNode("review")!.Details);
        Assert.Contains("expires 1h", g.FindNode("review")!.Details);
        Assert.Contains("supervise by sup@1", g.FindNode("boss")!.Details);
        Assert.Contains("when artifacts.note == null → a", g.FindNode("board")!.Details);
        Assert.Contains("until artifacts.note != null", g.FindNode("board")!.Details);
        Assert.Contains("auction: a, sup", g.FindNode("bid")!.Details);
        Assert.Contains("workflow child@1", g.FindNode("child")!.Details);
        Assert.Contains("plan by planner@1", g.FindNode("research")!.Details);
        Assert.Equal(["gate note", "check artifact.ok == true"], g.FindNode("check")!.Details);
    }

    [Fact]
    public async Task AStepNoRouteReaches_IsStillDrawn_WithItsRoutes()
    {
        var g = WorkflowGraph.From(await GraphWorkflows.LoadAsync("""
            ordo: 1
            workflow: w
            version: 1
            agents: { a: { kind: code, type: T.A } }
            steps:
              - { id: s, agent: a }
              - { id: orphan, agent: a, next: s }
            """));

        Assert.NotNull(g.FindNode("orphan"));
        Assert.Equal(GraphEdgeKind.Route, Edge(g, "orphan", "s").Kind);
        Assert.DoesNotContain(g.Edges, e => e.To == "orphan");
    }
}
