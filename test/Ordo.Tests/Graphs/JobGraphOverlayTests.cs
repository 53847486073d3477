using System.Text.Json;
using Ordo.Graphs;
using Ordo.State;
using Ordo.Tests.Patterns;
using static Ordo.Tests.Patterns.PatternHarness;

namespace Ordo.Tests.Graphs;

/// <summary>A job's overlay: each step's status and attempts, and the edges the engine took, from real runs.</summary>
public sealed class JobGraphOverlayTests
{
    internal const string Workflow = """
        ordo: 1
        workflow: overlay
        version: 1
        agents:
          echo: { kind: code, type: T.Echo }
          bad:  { kind: code, type: T.Bad }
        steps:
          - id: decide
            agent: echo
            next:
              - { when: "input.go == 'fan'", to: fan }
              - { when: "input.go == 'loop'", to: again }
              - { when: "input.go == 'bad'", to: broken }
              - { to: skipped }
          - { id: fan, parallel: [left, right], join: merge }
          - { id: left, agent: echo }
          - { id: right, agent: echo }
          - { id: merge, agent: echo, next: each }
          - { id: each, foreach: "${ input.items }", do: item, max_concurrency: 2 }
          - { id: item, agent: echo }
          - id: again
            agent: echo
            loop: { max_iterations: 3 }
            next:
              - { when: "steps.again.output.n < 3", to: again }
          - { id: broken, agent: bad, retry: { max_attempts: 2, backoff: 1ms } }
          - { id: skipped, agent: echo }
        """;

    internal static PatternHarness Harness()
    {
        var h = new PatternHarness();
        var n = 0;
        h.Agent("T.Echo", _ => J($$"""{"n": {{Interlocked.Increment(ref n)}}}"""));
        h.Agent("T.Bad", (_, _) => Task.FromException<JsonElement>(new InvalidOperationException("disk on fire")));
        return h;
    }

    internal static async Task<(WorkflowGraph Graph, JobGraphOverlay Overlay, JobState State)> RunAsync(PatternHarness h, string input)
    {
        var wf = await h.LoadAsync("wf.yaml", Workflow);
        var state = await h.RunAsync(wf, input);
        var graph = WorkflowGraph.From(wf);
        return (graph, JobGraphOverlay.From(graph, wf, state, await h.EventsAsync(state.JobId)), state);
    }

    private static HashSet<(string, string)> Taken(WorkflowGraph g, JobGraphOverlay o) => [.. g.Edges.Where(o.IsTaken).Select(e => (e.From, e.To))];

    [Fact]
    public async Task ParallelAndForeach_TheBranchesItemsAndJoinsTaken_AreMarked_AndTheRouteNotTakenIsNot()
    {
        await using var h = Harness();
        var (g, o, state) = await RunAsync(h, """{"go": "fan", "items": [1, 2, 3]}""");

        Assert.Equal(JobStatus.Completed, state.Status);
        HashSet<(string, string)> expected =
        [
            (WorkflowGraph.StartId, "decide"), ("decide", "fan"), ("fan", "left"), ("fan", "right"), ("left", "merge"), ("right", "merge"),
            ("merge", "each"), ("each", "item"), ("item", "each"), ("each", WorkflowGraph.EndId),
        ];
        Assert.True(expected.SetEquals(Taken(g, o)), string.Join(", ", Taken(g, o)));
        Assert.Equal(new GraphNodeState("succeeded", 3, 3), o.StateOf("item"));
        Assert.Equal(new GraphNodeState("succeeded", 1, 1), o.StateOf("left"));
        Assert.Equal("succeeded", o.StateOf("fan").Status);
        Assert.Equal(GraphNodeState.NotRun, o.StateOf("skipped"));
        Assert.Equal("completed", o.StateOf(WorkflowGraph.EndId).Status);
        Assert.Equal("not_run", o.StateOf(WorkflowGraph.FailId).Status);
    }

    [Fact]
    public async Task Loop_TheBackEdgeIsTaken_AndTheStepCountsItsVisits()
    {
        await using var h = Harness();
        var (g, o, _) = await RunAsync(h, """{"go": "loop"}""");

        Assert.True(o.IsTaken(Assert.Single(g.Edges, e => e.From == "again" && e.To == "again")));
        Assert.True(o.IsTaken(Assert.Single(g.Edges, e => e.From == "again" && e.To == WorkflowGraph.EndId)));
        // decide answers n = 1; again answers 2 (below 3: again), then 3 (the flow ends).
        Assert.Equal(new GraphNodeState("succeeded", 2, 2), o.StateOf("again"));
        Assert.False(o.IsTaken(Assert.Single(g.Edges, e => e.From == "decide" && e.To == "fan")));
    }

    [Fact]
    public async Task FailedStep_ShowsFailedWithItsAttempts_AndTheJobsFailure()
    {
        await using var h = Harness();
        var (g, o, state) = await RunAsync(h, """{"go": "bad"}""");

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Equal(new GraphNodeState("failed", 2, 1), o.StateOf("broken"));
        Assert.Equal("failed", o.StateOf(WorkflowGraph.FailId).Status);
        Assert.Equal("not_run", o.StateOf(WorkflowGraph.EndId).Status);
        Assert.True(o.IsTaken(Assert.Single(g.Edges, e => e.From == "decide" && e.To == "broken")));
        Assert.DoesNotContain(g.Edges.Where(o.IsTaken), e => e.From == "broken");
    }

    [Fact]
    public void OwnerOf_NamesTheInnermostCoordinatingStep()
    {
        Assert.Null(JobGraphOverlay.OwnerOf(null));
        Assert.Equal("fan", JobGraphOverlay.OwnerOf("fan#1/b1"));
        Assert.Equal("each", JobGraphOverlay.OwnerOf("fan#1/b1/each#2/7"));
    }
}
