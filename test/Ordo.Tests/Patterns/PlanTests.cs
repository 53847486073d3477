using System.Text.Json;
using Ordo.Events;
using Ordo.State;
using static Ordo.Tests.Patterns.PatternHarness;

namespace Ordo.Tests.Patterns;

/// <summary><c>plan</c> steps run from YAML: a valid plan runs in order; an invalid one is rejected whole (fallback or failure).</summary>
public sealed class PlanTests
{
    private static string Workflow(string plan = "{ agent: planner, catalog: [search, write], max_steps: 3, fallback: manual }") => $$"""
        ordo: 1
        workflow: planned
        version: 1
        artifacts:
          found: { schema: { type: object, required: [hits] } }
          draft: { schema: { type: object, required: [text] } }
        agents:
          planner:  { kind: code, type: T.Planner }
          search:   { kind: code, type: T.Search, output: found }
          write:    { kind: code, type: T.Write, output: draft }
          outsider: { kind: code, type: T.Outsider }
          manual:   { kind: code, type: T.Manual }
          collect:  { kind: code, type: T.Collect }
        steps:
          - id: make
            plan: {{plan}}
            input: { topic: "${ input.topic }" }
            next: done
          - { id: manual, agent: manual, next: done }
          - { id: done, agent: collect, input: { result: "${ steps.make.output }" } }
        """;

    private static PatternHarness Harness(string plan)
    {
        var h = new PatternHarness();
        h.Agent("T.Planner", _ => J(plan));
        h.Agent("T.Search", input => J($$"""{"hits": ["{{input.GetProperty("q").GetString()}}-1"]}"""));
        h.Agent("T.Write", input => J($$"""{"text": "about {{input.GetProperty("topic").GetString()}}"}"""));
        h.Agent("T.Outsider", "{\"x\": 1}");
        h.Agent("T.Manual", "{\"manual\": true}");
        h.Agent("T.Collect", input => input);
        return h;
    }

    [Fact]
    public async Task ValidPlan_RunsEachItemInOrder_WithItsInput_AndTheOutputHasEveryResult()
    {
        await using var h = Harness("""{"plan": [{"agent": "search", "input": {"q": "a"}}, {"agent": "write", "input": {"topic": "x"}}, {"agent": "search", "input": {"q": "b"}}]}""");
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Workflow()), """{"topic": "ducks"}""");

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("""{"task":{"topic":"ducks"},"catalog":["search","write"],"max_steps":3}""", Raw(h.Inputs("T.Planner").Single()));
        Assert.Equal(["""{"q":"a"}""", """{"q":"b"}"""], h.Inputs("T.Search").Select(i => Raw(i)));
        Assert.Equal("""{"topic":"x"}""", Raw(h.Inputs("T.Write").Single()));
        var output = state.Steps["make"].Output!.Value;
        Assert.Equal("""[{"hits":["a-1"]},{"text":"about x"},{"hits":["b-1"]}]""", Raw(output.GetProperty("results")));
        Assert.Equal(3, output.GetProperty("plan").GetArrayLength());
        Assert.Equal(0, h.Calls("T.Manual"));
        Assert.Equal(1, h.Calls("T.Collect"));
        // Every plan item's output became its agent's artifact, verified.
        Assert.Equal(2, state.Artifacts["found"].Verified!.Version);
        Assert.Equal("""{"hits":["b-1"]}""", Raw(state.Artifacts["found"].Verified!.Value));
        Assert.Equal(1, state.Artifacts["draft"].Verified!.Version);

        var units = await h.UnitsAsync(state.JobId);
        Assert.Equal(["plan", "item", "item", "item"], units.Select(u => u.Phase));
        Assert.Equal([0, 1, 2, 3], units.Select(u => u.Unit));
        Assert.All(units, u => Assert.Equal("plan", u.Kind));
        Assert.Equal([0, 1, 2], units.Skip(1).Select(u => u.Data.GetProperty("index").GetInt32()));
        Assert.Equal(["search", "write", "search"], units.Skip(1).Select(u => u.Data.GetProperty("agent").GetString()));
        Assert.All(units.Skip(1), u => Assert.Equal("verified", u.Data.GetProperty("verdict").GetString()));
        Assert.Equal("""{"text":"about x"}""", Raw(units[2].Data.GetProperty("output")));
    }

    [Fact]
    public async Task InvalidPlan_WithAFallback_RunsTheFallback_AndNoPlanItemEverRuns()
    {
        await using var h = Harness("""{"plan": [{"agent": "search", "input": {"q": "a"}}, {"agent": "outsider", "input": {}}]}""");
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Workflow()), """{"topic": "ducks"}""");

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal(0, h.Calls("T.Search"));
        Assert.Equal(0, h.Calls("T.Outsider"));
        Assert.Equal(1, h.Calls("T.Manual"));
        var output = state.Steps["make"].Output!.Value;
        Assert.Equal("plan rejected: plan[1].agent 'outsider' is not in the catalog (search, write)", output.GetProperty("rejected").GetString());
        Assert.Equal("manual", output.GetProperty("fallback").GetString());
        Assert.False(state.Artifacts.ContainsKey("found"));

        var events = await h.EventsAsync(state.JobId);
        Assert.DoesNotContain(events, e => e.Type == EventTypes.PatternProgressed);
        Assert.Equal(["manual"], events.Single(e => e.Type == EventTypes.StepSucceeded && e.StepId == "make").GetPayload<StepSucceededPayload>().Next);
        Assert.True(events.FindIndex(e => e.Type == EventTypes.StepSucceeded && e.StepId == "manual") < events.FindIndex(e => e.Type == EventTypes.StepSucceeded && e.StepId == "done"));
    }

    [Fact]
    public async Task APlannerThatFails_TakesTheFallback_WithTheReason_AndNoPlanItemRuns()
    {
        await using var h = Harness("{}");
        h.Agent("T.Planner", (_, _) => throw new InvalidOperationException("planner is down"));
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Workflow()), """{"topic": "ducks"}""");

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal((0, 0, 1), (h.Calls("T.Search"), h.Calls("T.Write"), h.Calls("T.Manual")));
        var output = state.Steps["make"].Output!.Value;
        Assert.StartsWith("plan rejected: the planner failed:", output.GetProperty("rejected").GetString(), StringComparison.Ordinal);
        Assert.Contains("planner is down", output.GetProperty("rejected").GetString(), StringComparison.Ordinal);
        Assert.Equal("manual", output.GetProperty("fallback").GetString());
    }

    [Theory]
    [InlineData("""{"plan": [{"agent": "outsider"}]}""", "plan[0].agent 'outsider' is not in the catalog (search, write)")]
    [InlineData("""{"plan": [{"agent": "search", "input": {"q": "1"}}, {"agent": "search", "input": {"q": "2"}}, {"agent": "search", "input": {"q": "3"}}, {"agent": "search", "input": {"q": "4"}}]}""", "the plan has 4 steps; max_steps is 3")]
    [InlineData("""{"plan": []}""", "the plan is empty")]
    [InlineData("""{"steps": []}""", "the planner's output has no 'plan' list")]
    [InlineData("""{"plan": [{"agent": "search", "input": "q=a"}]}""", "plan[0].input is not an object")]
    [InlineData("""{"plan": [{"agent": "search", "input": {"q": "a"}, "why": "because"}]}""", "plan[0] has an unknown key 'why'")]
    [InlineData("""{"plan": [{"input": {"q": "a"}}]}""", "plan[0] has no 'agent'")]
    public async Task InvalidPlan_WithoutAFallback_FailsTheStep_WithTheReason_AndRunsNothing(string plan, string reason)
    {
        await using var h = Harness(plan);
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Workflow("{ agent: planner, catalog: [search, write], max_steps: 3 }")), """{"topic": "t"}""");

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains($"plan rejected: {reason}", state.Reason);
        Assert.Equal(0, h.Calls("T.Search") + h.Calls("T.Write") + h.Calls("T.Outsider") + h.Calls("T.Manual") + h.Calls("T.Collect"));
        var failed = (await h.EventsAsync(state.JobId)).Single(e => e.Type == EventTypes.StepFailed).GetPayload<StepFailedPayload>();
        Assert.Equal("plan_rejected", failed.Error);
    }

    [Fact]
    public async Task InvalidPlan_ReportsEveryReasonAtOnce()
    {
        await using var h = Harness("""{"plan": [{"agent": "outsider"}, {"agent": "search", "input": {"q": "1"}}, {"agent": "ghost"}, {"agent": "write", "input": {"topic": "x"}}]}""");
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Workflow("{ agent: planner, catalog: [search, write], max_steps: 3 }")), """{"topic": "t"}""");

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains("the plan has 4 steps; max_steps is 3", state.Reason);
        Assert.Contains("plan[0].agent 'outsider' is not in the catalog", state.Reason);
        Assert.Contains("plan[2].agent 'ghost' is not in the catalog", state.Reason);
        Assert.Equal(0, h.Calls("T.Search"));
    }

    [Fact]
    public async Task APlanItemWhoseOutputBreaksItsContract_FailsTheStep_NamingTheItem_AndLaterItemsDoNotRun()
    {
        await using var h = Harness("""{"plan": [{"agent": "search", "input": {"q": "a"}}, {"agent": "write", "input": {"topic": "x"}}, {"agent": "search", "input": {"q": "b"}}]}""");
        h.Agent("T.Write", "{\"wrong\": true}");
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Workflow()), """{"topic": "t"}""");

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains("plan item 1 (write): its output was rejected", state.Reason);
        Assert.Equal(1, h.Calls("T.Search"));
        var events = await h.EventsAsync(state.JobId);
        Assert.Contains(events, e => e.Type == EventTypes.ArtifactRejected && e.GetPayload<ArtifactVerdictPayload>().Name == "draft");
        var item = events.Where(e => e.Type == EventTypes.PatternProgressed).Select(e => e.GetPayload<PatternProgressedPayload>()).Last();
        Assert.Equal(("item", "rejected"), (item.Phase, item.Data.GetProperty("verdict").GetString()));
        Assert.False(item.Data.TryGetProperty("output", out _));
        Assert.Equal("plan_item_rejected", events.Single(e => e.Type == EventTypes.StepFailed).GetPayload<StepFailedPayload>().Error);
    }

    [Fact]
    public async Task APlanItemThatFails_FailsTheStep_NamingTheItemAndItsAgent()
    {
        await using var h = Harness("""{"plan": [{"agent": "search", "input": {"q": "a"}}, {"agent": "write", "input": {"topic": "x"}}]}""");
        h.Agent("T.Write", (_, _) => Task.FromException<JsonElement>(new InvalidOperationException("pen broke")));
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Workflow()), """{"topic": "t"}""");

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains("plan item 1 (write)", state.Reason);
        Assert.Contains("pen broke", state.Reason);
        Assert.Equal(1, h.Calls("T.Search"));
        Assert.Equal(1, h.Calls("T.Planner"));
    }
}
