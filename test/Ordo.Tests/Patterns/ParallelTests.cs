using System.Text.Json;
using Ordo.Engine;
using Ordo.Events;
using Ordo.State;
using static Ordo.Tests.Patterns.PatternHarness;

namespace Ordo.Tests.Patterns;

/// <summary><c>parallel</c> steps run from YAML: join policies all / any / quorum(N), failing and cancelled branches, the join step.</summary>
public sealed class ParallelTests
{
    /// <summary>A workflow whose branches run the <c>echo</c> agent (returns <c>{ from: input.name }</c>) unless the test's YAML says otherwise.</summary>
    private static string Workflow(string fan, string branches, string? join = null) => $$"""
        ordo: 1
        workflow: fan-out
        version: 1
        agents:
          echo:   { kind: code, type: T.Echo }
          joiner: { kind: code, type: T.Join }
          slow:   { kind: code, type: T.Slow }
          bad:    { kind: code, type: T.Bad }
          after:  { kind: code, type: T.After }
        steps:
          - {{fan}}
        {{branches}}
        {{join ?? "  - { id: merge, agent: joiner, input: { fan: \"${ steps.fan.output }\" } }"}}
        """;

    private static PatternHarness Harness()
    {
        var h = new PatternHarness();
        h.Agent("T.Echo", input => J($$"""{"from": "{{input.GetProperty("name").GetString()}}"}"""));
        h.Agent("T.Join", input => input);
        h.Agent("T.After", "{\"after\": true}");
        h.Agent("T.Slow", "{\"slow\": true}");
        h.Agent("T.Bad", (_, _) => Task.FromException<JsonElement>(new InvalidOperationException("disk on fire")));
        return h;
    }

    private static List<BranchEndedPayload> BranchEnds(List<EventEnvelope> events, string owner)
        => events.Where(e => e.Type == EventTypes.BranchEnded && e.StepId == owner).Select(e => e.GetPayload<BranchEndedPayload>()).ToList();

    [Fact]
    public async Task All_RunsEveryBranchToItsEnd_ThenTheJoinOnce_WithEachBranchOutput()
    {
        await using var h = Harness();
        var wf = await h.LoadAsync("wf.yaml", Workflow("{ id: fan, parallel: [a, b, c], join: merge, join_policy: all }", """
              - { id: a, agent: echo, input: { name: a1 }, next: a2 }
              - { id: a2, agent: echo, input: { name: "${ steps.a.output.from }-then-a2" } }
              - { id: b, agent: echo, input: { name: b } }
              - { id: c, agent: echo, input: { name: c } }
            """, """
              - id: merge
                agent: joiner
                input: { a: "${ steps.a.output }", b: "${ steps.b.output }", c: "${ steps.c.output }", statuses: "${ [steps.a.status, steps.b.status, steps.c.status] }" }
            """));
        var state = await h.RunAsync(wf);

        Assert.Equal(JobStatus.Completed, state.Status);
        // A branch's result is the output of its last step (a → a2).
        Assert.Equal("""{"a":{"from":"a1-then-a2"},"b":{"from":"b"},"c":{"from":"c"}}""", Raw(state.Steps["fan"].Output));
        Assert.Equal(1, h.Calls("T.Join"));
        var joined = h.Inputs("T.Join").Single();
        Assert.Equal("""{"from":"a1-then-a2"}""", Raw(joined.GetProperty("a")));
        Assert.Equal("""{"from":"c"}""", Raw(joined.GetProperty("c")));
        Assert.Equal("""["succeeded","succeeded","succeeded"]""", Raw(joined.GetProperty("statuses")));

        var events = await h.EventsAsync(state.JobId);
        var started = events.Single(e => e.Type == EventTypes.PatternStarted).GetPayload<PatternStartedPayload>();
        Assert.Equal(("parallel", 3, "all", 3), (started.Kind, started.Count, started.Join, started.Needed));
        Assert.Equal(["a", "b", "c"], started.Labels);
        var branchStarts = events.Where(e => e.Type == EventTypes.StepScheduled && e.GetPayload<StepScheduledPayload>().Reason == "branch").ToList();
        Assert.Equal(["fan#1/a", "fan#1/b", "fan#1/c"], branchStarts.Select(e => e.Scope!).Order(StringComparer.Ordinal));
        Assert.All(branchStarts, e => Assert.Equal("fan", e.GetPayload<StepScheduledPayload>().From));
        // The second step of branch a runs in a's scope.
        Assert.Contains(events, e => e.Type == EventTypes.StepSucceeded && e.StepId == "a2" && e.Scope == "fan#1/a");

        var ends = BranchEnds(events, "fan");
        Assert.Equal(["a", "b", "c"], ends.Select(b => b.Label).Order(StringComparer.Ordinal));
        Assert.All(ends, b => Assert.Equal("succeeded", b.Status));
        Assert.Equal("""{"from":"a1-then-a2"}""", Raw(ends.Single(b => b.Label == "a").Output));

        // Order: every branch ends before the parallel step succeeds; the parallel step routes to the join, which runs once.
        var fanDone = events.FindIndex(e => e.Type == EventTypes.StepSucceeded && e.StepId == "fan");
        Assert.True(events.FindLastIndex(e => e.Type == EventTypes.BranchEnded) < fanDone);
        Assert.Equal(["merge"], events[fanDone].GetPayload<StepSucceededPayload>().Next);
        Assert.Single(events, e => e.Type == EventTypes.StepScheduled && e.StepId == "merge");
        Assert.Single(events, e => e.Type == EventTypes.StepSucceeded && e.StepId == "merge");
        Assert.Equal(EventTypes.JobCompleted, events[^1].Type);
    }

    [Fact]
    public async Task All_ManyBranchesEndingTogether_JoinRunsExactlyOncePerJob()
    {
        await using var h = Harness();
        var names = Enumerable.Range(1, 8).Select(i => $"b{i}").ToList();
        var wf = await h.LoadAsync("wf.yaml", Workflow($"{{ id: fan, parallel: [{string.Join(", ", names)}], join: merge }}",
            string.Join("\n", names.Select(n => $"  - {{ id: {n}, agent: echo, input: {{ name: {n} }} }}")),
            "  - { id: merge, agent: joiner, input: { n: \"${ Object.keys(steps.fan.output).length }\" } }"));
        var jobs = new List<JobId>();
        for (var i = 0; i < 5; i++) jobs.Add(await h.SubmitAsync(wf));
        await h.Runtime.RunAsync(new RunRequest { UntilIdle = true }).WaitAsync(Patience);

        foreach (var id in jobs)
        {
            var events = await h.EventsAsync(id);
            Assert.Equal(EventTypes.JobCompleted, events[^1].Type);
            Assert.Equal(8, BranchEnds(events, "fan").Count(b => b.Status == "succeeded"));
            Assert.Single(events, e => e.Type == EventTypes.StepSucceeded && e.StepId == "fan");
            Assert.Single(events, e => e.Type == EventTypes.StepScheduled && e.StepId == "merge");
        }

        Assert.Equal(5, h.Calls("T.Join"));
        Assert.All(h.Inputs("T.Join"), i => Assert.Equal(8, i.GetProperty("n").GetInt32()));
    }

    [Fact]
    public async Task All_AFailingBranch_FailsTheStepAndTheJob_CancelsTheRunningBranch_AndTheJoinNeverRuns()
    {
        await using var h = Harness();
        h.Agent("T.Slow", async (ctx, ct) =>
        {
            await h.WhenAnyJobEndsAsync();
            return J("""{"late": true}""");
        });
        h.Agent("T.BadAfterOk", async (ctx, ct) =>
        {
            await h.WhenAsync(e => e.Type == EventTypes.BranchEnded && e.GetPayload<BranchEndedPayload>().Label == "ok");
            throw new InvalidOperationException("disk on fire");
        });
        var wf = await h.LoadAsync("wf.yaml", Workflow("{ id: fan, parallel: [ok, broken, hang], join: merge }", """
              - { id: ok, agent: echo, input: { name: ok } }
              - { id: broken, agent: bad2 }
              - { id: hang, agent: slow, next: hang2 }
              - { id: hang2, agent: after }
            """).Replace("  after:  { kind: code, type: T.After }", "  after:  { kind: code, type: T.After }\n  bad2:   { kind: code, type: T.BadAfterOk }", StringComparison.Ordinal));
        var state = await h.RunAsync(wf);

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains("branch 'broken' failed", state.Reason);
        Assert.Contains("disk on fire", state.Reason);
        var events = await h.EventsAsync(state.JobId);
        var ends = BranchEnds(events, "fan");
        Assert.Equal("succeeded", ends.Single(b => b.Label == "ok").Status);
        var broken = ends.Single(b => b.Label == "broken");
        Assert.Equal("failed", broken.Status);
        Assert.Contains("disk on fire", broken.Reason);
        var hang = ends.Single(b => b.Label == "hang");
        Assert.Equal("cancelled", hang.Status);
        Assert.Equal("cancelled: branch 'broken' failed", hang.Reason);

        var fanFailed = events.Single(e => e.Type == EventTypes.StepFailed && e.StepId == "fan").GetPayload<StepFailedPayload>();
        Assert.Equal("branch_failed", fanFailed.Error);
        Assert.Equal(0, h.Calls("T.Join"));
        Assert.Equal(0, h.Calls("T.After"));
        // The cancelled branch's late result is discarded: nothing of it is recorded after the job failed.
        Assert.DoesNotContain(events, e => e.Type == EventTypes.StepSucceeded && e.StepId == "hang");
        Assert.Equal(EventTypes.JobFailed, events[^1].Type);
    }

    [Fact]
    public async Task Any_FirstSuccessJoins_TheOthersAreCancelledAndSaySo_AndTheJoinSeesTheWinner()
    {
        await using var h = Harness();
        h.Agent("T.Slow", async (ctx, ct) =>
        {
            await h.WhenAnyJobEndsAsync();
            return J("""{"late": true}""");
        });
        var wf = await h.LoadAsync("wf.yaml", Workflow("{ id: fan, parallel: [fast, s1, s2], join: merge, join_policy: any }", """
              - { id: fast, agent: echo, input: { name: fast } }
              - { id: s1, agent: slow, next: s1b }
              - { id: s1b, agent: after }
              - { id: s2, agent: slow }
            """, """
              - id: merge
                agent: joiner
                input: { winner: "${ steps.fast.output }", s1: "${ steps.s1.status }", s2: "${ steps.s2.status }", fan: "${ steps.fan.output }" }
            """));
        var state = await h.RunAsync(wf);

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("""{"fast":{"from":"fast"}}""", Raw(state.Steps["fan"].Output));
        var joined = h.Inputs("T.Join").Single();
        Assert.Equal("""{"from":"fast"}""", Raw(joined.GetProperty("winner")));
        Assert.Equal("cancelled", joined.GetProperty("s1").GetString());
        Assert.Equal("cancelled", joined.GetProperty("s2").GetString());
        Assert.Equal("""{"fast":{"from":"fast"}}""", Raw(joined.GetProperty("fan")));

        var events = await h.EventsAsync(state.JobId);
        var ends = BranchEnds(events, "fan");
        Assert.Equal(3, ends.Count);
        Assert.Equal("succeeded", ends[0].Status);
        Assert.Equal("fast", ends[0].Label);
        foreach (var loser in ends.Skip(1))
        {
            Assert.Equal("cancelled", loser.Status);
            Assert.Equal("cancelled: join_policy any was met", loser.Reason);
            Assert.Null(loser.Output);
        }

        Assert.Equal(["s1", "s2"], ends.Skip(1).Select(b => b.Label));
        Assert.Equal(0, h.Calls("T.After"));
        Assert.Equal(1, h.Calls("T.Join"));
        Assert.Single(events, e => e.Type == EventTypes.StepScheduled && e.StepId == "merge");
        Assert.DoesNotContain(events, e => e.Type == EventTypes.StepSucceeded && e.StepId is "s1" or "s2");
    }

    [Fact]
    public async Task Any_AFailedBranch_DoesNotFailTheStep_WhileASuccessIsStillPossible()
    {
        await using var h = Harness();
        h.Agent("T.Slow", async (ctx, ct) =>
        {
            await h.WhenAsync(e => e.Type == EventTypes.BranchEnded && e.GetPayload<BranchEndedPayload>().Status == "failed");
            return J("""{"from": "late-winner"}""");
        });
        var wf = await h.LoadAsync("wf.yaml", Workflow("{ id: fan, parallel: [broken, eventually], join: merge, join_policy: any }", """
              - { id: broken, agent: bad }
              - { id: eventually, agent: slow }
            """, """
              - { id: merge, agent: joiner, input: { broken: "${ steps.broken.status }", why: "${ steps.broken.output }" } }
            """));
        var state = await h.RunAsync(wf);

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("""{"eventually":{"from":"late-winner"}}""", Raw(state.Steps["fan"].Output));
        Assert.Equal("failed", h.Inputs("T.Join").Single().GetProperty("broken").GetString());
        var ends = BranchEnds(await h.EventsAsync(state.JobId), "fan");
        Assert.Equal([("broken", "failed"), ("eventually", "succeeded")], ends.Select(b => (b.Label, b.Status)));
        Assert.Contains("disk on fire", ends[0].Reason);
    }

    [Fact]
    public async Task Any_EveryBranchFails_FailsTheStep_SayingThePolicyCanNoLongerBeMet()
    {
        await using var h = Harness();
        h.Agent("T.Slow", async (ctx, ct) =>
        {
            await h.WhenAsync(e => e.Type == EventTypes.BranchEnded && e.GetPayload<BranchEndedPayload>().Label == "first");
            throw new InvalidOperationException("also broken");
        });
        var wf = await h.LoadAsync("wf.yaml", Workflow("{ id: fan, parallel: [first, second], join: merge, join_policy: any }", """
              - { id: first, agent: bad }
              - { id: second, agent: slow }
            """));
        var state = await h.RunAsync(wf);

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains("2 of 2 branches failed, so join_policy any can no longer be met", state.Reason);
        Assert.Contains("branch 'second'", state.Reason);
        Assert.Contains("also broken", state.Reason);
        Assert.Equal(0, h.Calls("T.Join"));
        var events = await h.EventsAsync(state.JobId);
        Assert.All(BranchEnds(events, "fan"), b => Assert.Equal("failed", b.Status));
        Assert.Equal("branch_failed", events.Single(e => e.Type == EventTypes.StepFailed && e.StepId == "fan").GetPayload<StepFailedPayload>().Error);
    }

    [Fact]
    public async Task Quorum_JoinsOnTheNthSuccess_AndCancelsTheRest()
    {
        await using var h = Harness();
        h.Agent("T.Second", async (ctx, ct) =>
        {
            await h.WhenAsync(e => e.Type == EventTypes.BranchEnded && e.GetPayload<BranchEndedPayload>().Label == "one");
            return J("""{"from": "two"}""");
        });
        h.Agent("T.Slow", async (ctx, ct) =>
        {
            await h.WhenAnyJobEndsAsync();
            return J("""{"late": true}""");
        });
        var wf = await h.LoadAsync("wf.yaml", Workflow("{ id: fan, parallel: [one, two, three], join: merge, join_policy: quorum(2) }", """
              - { id: one, agent: echo, input: { name: one } }
              - { id: two, agent: second }
              - { id: three, agent: slow }
            """, """
              - { id: merge, agent: joiner, input: { one: "${ steps.one.output }", two: "${ steps.two.output }", three: "${ steps.three.status }" } }
            """).Replace("  after:  { kind: code, type: T.After }", "  after:  { kind: code, type: T.After }\n  second: { kind: code, type: T.Second }", StringComparison.Ordinal));
        var state = await h.RunAsync(wf);

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("""{"one":{"from":"one"},"two":{"from":"two"}}""", Raw(state.Steps["fan"].Output));
        var joined = h.Inputs("T.Join").Single();
        Assert.Equal("cancelled", joined.GetProperty("three").GetString());
        Assert.Equal("""{"from":"two"}""", Raw(joined.GetProperty("two")));

        var events = await h.EventsAsync(state.JobId);
        var started = events.Single(e => e.Type == EventTypes.PatternStarted).GetPayload<PatternStartedPayload>();
        Assert.Equal(("quorum", 2), (started.Join, started.Needed));
        var ends = BranchEnds(events, "fan");
        Assert.Equal([("one", "succeeded"), ("two", "succeeded"), ("three", "cancelled")], ends.Select(b => (b.Label, b.Status)));
        Assert.Equal("cancelled: join_policy quorum(2) was met", ends[2].Reason);
    }

    [Fact]
    public async Task Quorum_FailsAsSoonAsTheQuorumIsOutOfReach_CancellingTheBranchStillRunning()
    {
        await using var h = Harness();
        h.Agent("T.BadAfterFirst", async (ctx, ct) =>
        {
            await h.WhenAsync(e => e.Type == EventTypes.BranchEnded && e.GetPayload<BranchEndedPayload>().Label == "x");
            throw new InvalidOperationException("second failure");
        });
        h.Agent("T.Slow", async (ctx, ct) =>
        {
            await h.WhenAnyJobEndsAsync();
            return J("""{"late": true}""");
        });
        var wf = await h.LoadAsync("wf.yaml", Workflow("{ id: fan, parallel: [x, y, z], join: merge, join_policy: quorum(2) }", """
              - { id: x, agent: bad }
              - { id: y, agent: bad2 }
              - { id: z, agent: slow }
            """).Replace("  after:  { kind: code, type: T.After }", "  after:  { kind: code, type: T.After }\n  bad2:   { kind: code, type: T.BadAfterFirst }", StringComparison.Ordinal));
        var state = await h.RunAsync(wf);

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains("2 of 3 branches failed, so join_policy quorum(2) can no longer be met", state.Reason);
        Assert.Contains("second failure", state.Reason);
        var ends = BranchEnds(await h.EventsAsync(state.JobId), "fan");
        Assert.Equal([("x", "failed"), ("y", "failed"), ("z", "cancelled")], ends.Select(b => (b.Label, b.Status)));
        Assert.Equal("cancelled: branch 'y' failed", ends[2].Reason);
        Assert.Equal(0, h.Calls("T.Join"));
    }

    [Fact]
    public async Task Quorum_OneFailureWithinTheMargin_StillSucceeds()
    {
        await using var h = Harness();
        h.Agent("T.Slow", async (ctx, ct) =>
        {
            await h.WhenAsync(e => e.Type == EventTypes.BranchEnded && e.GetPayload<BranchEndedPayload>().Status == "failed");
            return J("""{"from": "after-failure"}""");
        });
        var wf = await h.LoadAsync("wf.yaml", Workflow("{ id: fan, parallel: [p, q, r], join: merge, join_policy: quorum(2) }", """
              - { id: p, agent: bad }
              - { id: q, agent: slow }
              - { id: r, agent: slow }
            """));
        var state = await h.RunAsync(wf);

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("""{"q":{"from":"after-failure"},"r":{"from":"after-failure"}}""", Raw(state.Steps["fan"].Output));
        Assert.Equal(1, h.Calls("T.Join"));
    }

    [Fact]
    public async Task ParallelWithoutJoin_EndsTheJob_WithTheBranchOutputsAsItsResult()
    {
        await using var h = Harness();
        var wf = await h.LoadAsync("wf.yaml", Workflow("{ id: fan, parallel: [a, b] }", """
              - { id: a, agent: echo, input: { name: a } }
              - { id: b, agent: echo, input: { name: b } }
            """, ""));
        var state = await h.RunAsync(wf);

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("""{"a":{"from":"a"},"b":{"from":"b"}}""", Raw(state.Steps["fan"].Output));
        var events = await h.EventsAsync(state.JobId);
        Assert.Empty(events.Single(e => e.Type == EventTypes.StepSucceeded && e.StepId == "fan").GetPayload<StepSucceededPayload>().Next!);
    }
}
