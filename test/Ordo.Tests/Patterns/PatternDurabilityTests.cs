using System.Collections.Concurrent;
using System.Text.Json;
using Ordo.Engine;
using Ordo.Events;
using Ordo.State;
using static Ordo.Tests.Patterns.PatternHarness;

namespace Ordo.Tests.Patterns;

/// <summary>
/// A runtime is stopped (graceful stop, zero grace) in the middle of a pattern; a NEW runtime over the same store — no
/// cached state, definitions read back from the store — finishes the job. Finished branches, items and units never run
/// again; only the work that was interrupted does.
/// </summary>
/// <remarks>
/// Ordo.Tests has no reference to Ordo.Sqlite, so the store shared by the two runtimes is the in-memory one: what
/// survives is exactly what was committed to the store (events, work items, definitions), nothing held by the first runtime.
/// </remarks>
public sealed class PatternDurabilityTests
{
    /// <summary>Counts calls per key, and blocks the calls a test wants interrupted until the runtime running them is stopped.</summary>
    private sealed class Work
    {
        private readonly ConcurrentDictionary<string, int> _runs = new(StringComparer.Ordinal);
        private readonly ConcurrentDictionary<string, TaskCompletionSource> _started = new(StringComparer.Ordinal);

        /// <summary>While true, calls for keys in <see cref="Blocked"/> wait until cancelled.</summary>
        public volatile bool Blocking = true;

        public HashSet<string> Blocked { get; } = new(StringComparer.Ordinal);

        public int Runs(string key) => _runs.TryGetValue(key, out var n) ? n : 0;

        public Task Started(string key) => _started.GetOrAdd(key, _ => new(TaskCreationOptions.RunContinuationsAsynchronously)).Task.WaitAsync(Patience);

        public async Task RunAsync(string key, CancellationToken ct)
        {
            _runs.AddOrUpdate(key, 1, (_, n) => n + 1);
            _started.GetOrAdd(key, _ => new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
            if (Blocking && Blocked.Contains(key))
            {
                await Task.Delay(Timeout.Infinite, ct);
            }
        }
    }

    private static OrdoRuntimeOptions Options() => new() { Workers = 6, PollInterval = TimeSpan.FromMilliseconds(5), ShutdownGrace = TimeSpan.Zero, KillSwitchRefresh = TimeSpan.Zero };

    /// <summary>Runs the job on the harness's runtime until <paramref name="ready"/> completes, then stops that runtime.</summary>
    private static async Task StopMidwayAsync(PatternHarness h, JobId id, Task ready)
    {
        using var stop = new CancellationTokenSource();
        var run = h.Runtime.RunAsync(new RunRequest { RootJobId = id, UntilIdle = true }, stop.Token);
        await ready.WaitAsync(Patience);
        await stop.CancelAsync();
        var summary = await run.WaitAsync(Patience);
        Assert.True(summary.Stopped);
        var state = (await h.Runtime.GetStateAsync(id))!;
        Assert.False(state.Status.IsTerminal(), $"the job should still be running, but it is {state.Status}");
    }

    private static async Task<JobState> FinishOnANewRuntimeAsync(PatternHarness h, Work work, JobId id)
    {
        work.Blocking = false;
        var second = h.NewRuntime(Options());
        return await h.ContinueAsync(id, second);
    }

    [Fact]
    public async Task Foreach_StoppedMidway_FinishesOnANewRuntime_WithoutRerunningFinishedItems()
    {
        var work = new Work { Blocked = { "item2", "item3" } };
        await using var h = new PatternHarness(Options());
        h.Agent("T.Proc", async (ctx, ct) =>
        {
            var i = ctx.Input.GetProperty("at").GetInt32();
            await work.RunAsync($"item{i}", ct);
            return J($$"""{"v": {{i * 10}}}""");
        });
        var wf = await h.LoadAsync("wf.yaml", """
            ordo: 1
            workflow: durable-map
            version: 1
            agents:
              proc: { kind: code, type: T.Proc }
            steps:
              - { id: each, foreach: "${ input.items }", do: process, max_concurrency: 4 }
              - { id: process, agent: proc, input: { at: "${ index }" } }
            """);
        var id = await h.SubmitAsync(wf, """{"items": ["a", "b", "c", "d"]}""");

        var twoDone = h.WhenAsync(e => e.JobId == id && e.Type == EventTypes.BranchEnded, 2);
        await StopMidwayAsync(h, id, Task.WhenAll(twoDone, work.Started("item2"), work.Started("item3")));
        Assert.Equal(["0", "1"], (await twoDone).Select(e => e.GetPayload<BranchEndedPayload>().Label).Order(StringComparer.Ordinal));

        var state = await FinishOnANewRuntimeAsync(h, work, id);

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("""[{"v":0},{"v":10},{"v":20},{"v":30}]""", Raw(state.Steps["each"].Output));
        Assert.Equal((1, 1, 2, 2), (work.Runs("item0"), work.Runs("item1"), work.Runs("item2"), work.Runs("item3")));
        var events = await h.EventsAsync(id);
        Assert.Single(events, e => e.Type == EventTypes.PatternStarted);
        Assert.Equal(4, events.Count(e => e.Type == EventTypes.StepScheduled && e.GetPayload<StepScheduledPayload>().Reason == "item"));
        Assert.Equal(["0", "1", "2", "3"], events.Where(e => e.Type == EventTypes.BranchEnded).Select(e => e.GetPayload<BranchEndedPayload>().Label).Order(StringComparer.Ordinal));
        Assert.Equal(4, events.Count(e => e.Type == EventTypes.StepSucceeded && e.StepId == "process"));
        Assert.True((await AuditVerifier.VerifyAsync(h.Store, id)).Intact);
    }

    [Fact]
    public async Task Parallel_StoppedMidway_FinishesOnANewRuntime_WithoutRerunningFinishedBranchesOrSteps()
    {
        var work = new Work { Blocked = { "b2", "c" } };
        await using var h = new PatternHarness(Options());
        h.Agent("T.Step", async (ctx, ct) =>
        {
            var key = ctx.Input.GetProperty("key").GetString()!;
            await work.RunAsync(key, ct);
            return J($$"""{"done": "{{key}}"}""");
        });
        h.Agent("T.Join", async (ctx, ct) =>
        {
            await work.RunAsync("join", ct);
            return ctx.Input;
        });
        var wf = await h.LoadAsync("wf.yaml", """
            ordo: 1
            workflow: durable-fan
            version: 1
            agents:
              step:   { kind: code, type: T.Step }
              joiner: { kind: code, type: T.Join }
            steps:
              - { id: fan, parallel: [a, b, c], join: merge }
              - { id: a, agent: step, input: { key: a }, next: a2 }
              - { id: a2, agent: step, input: { key: a2 } }
              - { id: b, agent: step, input: { key: b1 }, next: b2 }
              - { id: b2, agent: step, input: { key: b2 } }
              - { id: c, agent: step, input: { key: c } }
              - { id: merge, agent: joiner, input: { a: "${ steps.a.output }", b: "${ steps.b.output }", c: "${ steps.c.output }" } }
            """);
        var id = await h.SubmitAsync(wf);

        var aDone = h.WhenAsync(e => e.JobId == id && e.Type == EventTypes.BranchEnded && e.GetPayload<BranchEndedPayload>().Label == "a");
        await StopMidwayAsync(h, id, Task.WhenAll(aDone, work.Started("b2"), work.Started("c")));

        var state = await FinishOnANewRuntimeAsync(h, work, id);

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("""{"a":{"done":"a2"},"b":{"done":"b2"},"c":{"done":"c"}}""", Raw(state.Steps["fan"].Output));
        Assert.Equal((1, 1, 1), (work.Runs("a"), work.Runs("a2"), work.Runs("b1")));
        Assert.Equal((2, 2), (work.Runs("b2"), work.Runs("c")));
        Assert.Equal(1, work.Runs("join"));
        var events = await h.EventsAsync(id);
        Assert.Equal(3, events.Count(e => e.Type == EventTypes.BranchEnded));
        Assert.Single(events, e => e.Type == EventTypes.StepSucceeded && e.StepId == "fan");
        Assert.Single(events, e => e.Type == EventTypes.StepScheduled && e.StepId == "merge");
    }

    [Fact]
    public async Task SubWorkflow_StoppedWhileTheChildRuns_FinishesOnANewRuntime_WithOneChildJob()
    {
        var work = new Work { Blocked = { "second" } };
        await using var h = new PatternHarness(Options());
        h.Agent("T.Step", async (ctx, ct) =>
        {
            var key = ctx.Input.GetProperty("key").GetString()!;
            await work.RunAsync(key, ct);
            return J($$"""{"done": "{{key}}"}""");
        });
        h.Write("child.yaml", """
            ordo: 1
            workflow: durable-child
            version: 1
            artifacts:
              result: { schema: { type: object } }
            agents:
              step: { kind: code, type: T.Step, output: result }
            steps:
              - { id: one, agent: step, input: { key: first }, next: two }
              - { id: two, agent: step, input: { key: second } }
            """);
        var wf = await h.LoadAsync("wf.yaml", """
            ordo: 1
            workflow: durable-parent
            version: 1
            steps:
              - { id: sub, workflow: durable-child@1, input: {} }
            """);
        var id = await h.SubmitAsync(wf);

        await StopMidwayAsync(h, id, work.Started("second"));
        var state = await FinishOnANewRuntimeAsync(h, work, id);

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("""{"result":{"done":"second"}}""", Raw(state.Steps["sub"].Output));
        var child = Assert.Single(await h.ChildrenAsync(id));
        Assert.Equal(JobStatus.Completed, child.Status);
        Assert.Equal((1, 2), (work.Runs("first"), work.Runs("second")));
        Assert.Single(await h.EventsAsync(id), e => e.Type == EventTypes.BranchStarted);
    }

    [Fact]
    public async Task Plan_StoppedMidPlan_FinishesOnANewRuntime_WithoutRerunningThePlannerOrFinishedItems()
    {
        var work = new Work { Blocked = { "item1" } };
        await using var h = new PatternHarness(Options());
        h.Agent("T.Planner", async (ctx, ct) =>
        {
            await work.RunAsync("planner", ct);
            return J("""{"plan": [{"agent": "doer", "input": {"n": 0}}, {"agent": "doer", "input": {"n": 1}}, {"agent": "doer", "input": {"n": 2}}]}""");
        });
        h.Agent("T.Do", async (ctx, ct) =>
        {
            var n = ctx.Input.GetProperty("n").GetInt32();
            await work.RunAsync($"item{n}", ct);
            return J($$"""{"n": {{n}}}""");
        });
        var wf = await h.LoadAsync("wf.yaml", """
            ordo: 1
            workflow: durable-plan
            version: 1
            agents:
              planner: { kind: code, type: T.Planner }
              doer:    { kind: code, type: T.Do }
            steps:
              - { id: make, plan: { agent: planner, catalog: [doer], max_steps: 5 } }
            """);
        var id = await h.SubmitAsync(wf);

        await StopMidwayAsync(h, id, work.Started("item1"));
        var state = await FinishOnANewRuntimeAsync(h, work, id);

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("""[{"n":0},{"n":1},{"n":2}]""", Raw(state.Steps["make"].Output!.Value.GetProperty("results")));
        Assert.Equal((1, 1, 2, 1), (work.Runs("planner"), work.Runs("item0"), work.Runs("item1"), work.Runs("item2")));
        var units = await h.UnitsAsync(id);
        Assert.Equal(["plan", "item", "item", "item"], units.Select(u => u.Phase));
        Assert.Equal([0, 1, 2, 3], units.Select(u => u.Unit));
    }

    [Fact]
    public async Task Supervise_StoppedMidRound_FinishesOnANewRuntime_WithoutRepeatingFinishedRoundsOrDecisions()
    {
        var work = new Work { Blocked = { "worker2" } };
        await using var h = new PatternHarness(Options());
        h.Agent("T.Boss", async (ctx, ct) =>
        {
            var round = ctx.Input.GetProperty("round").GetInt32();
            await work.RunAsync($"boss{round}", ct);
            return round <= 3 ? Ordo.Json.Of(new { next = "worker", input = new { n = round } }) : J("""{"next": "done"}""");
        });
        h.Agent("T.Work", async (ctx, ct) =>
        {
            var n = ctx.Input.GetProperty("n").GetInt32();
            await work.RunAsync($"worker{n}", ct);
            return J($$"""{"n": {{n}}}""");
        });
        var wf = await h.LoadAsync("wf.yaml", """
            ordo: 1
            workflow: durable-supervise
            version: 1
            agents:
              boss:   { kind: code, type: T.Boss }
              worker: { kind: code, type: T.Work }
            steps:
              - { id: lead, supervise: { agent: boss, workers: [worker], max_rounds: 5 } }
            """);
        var id = await h.SubmitAsync(wf);

        await StopMidwayAsync(h, id, work.Started("worker2"));
        var state = await FinishOnANewRuntimeAsync(h, work, id);

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal(3, state.Steps["lead"].Output!.Value.GetArrayLength());
        // Round 1 (decision and work) and round 2's decision were committed before the stop: none of them runs again.
        Assert.Equal((1, 1, 1, 1), (work.Runs("boss1"), work.Runs("worker1"), work.Runs("boss2"), work.Runs("boss4")));
        Assert.Equal((2, 1, 1), (work.Runs("worker2"), work.Runs("boss3"), work.Runs("worker3")));
    }

    [Fact]
    public async Task Auction_StoppedDuringTheBids_FinishesOnANewRuntime_WithoutAskingFinishedBiddersAgain()
    {
        var work = new Work { Blocked = { "beta:bid" } };
        await using var h = new PatternHarness(Options());
        foreach (var (type, name, cost) in new[] { ("T.Alpha", "alpha", 3), ("T.Beta", "beta", 1), ("T.Gamma", "gamma", 2) })
        {
            h.Agent(type, async (ctx, ct) =>
            {
                var phase = ctx.Input.GetProperty("phase").GetString();
                await work.RunAsync($"{name}:{phase}", ct);
                return J(phase == "bid" ? $$"""{"cost": {{cost}}, "latency_ms": 0, "confidence": 0}""" : $$"""{"done_by": "{{name}}"}""");
            });
        }

        var wf = await h.LoadAsync("wf.yaml", """
            ordo: 1
            workflow: durable-auction
            version: 1
            agents:
              alpha: { kind: code, type: T.Alpha }
              beta:  { kind: code, type: T.Beta }
              gamma: { kind: code, type: T.Gamma }
            steps:
              - { id: bid, auction: { bidders: [alpha, beta, gamma], task: "${ input }", score: "bid.cost" } }
            """);
        var id = await h.SubmitAsync(wf);

        await StopMidwayAsync(h, id, work.Started("beta:bid"));
        var state = await FinishOnANewRuntimeAsync(h, work, id);

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("""{"done_by":"beta"}""", Raw(state.Steps["bid"].Output));
        Assert.Equal((1, 2, 1), (work.Runs("alpha:bid"), work.Runs("beta:bid"), work.Runs("gamma:bid")));
        Assert.Equal((0, 1, 0), (work.Runs("alpha:award"), work.Runs("beta:award"), work.Runs("gamma:award")));
        var bids = (await h.UnitsAsync(id)).Where(u => u.Phase == "bid").ToList();
        Assert.Equal(3, bids.Count);
    }

    [Fact]
    public async Task Board_StoppedDuringAFiring_FinishesOnANewRuntime_WithoutRepeatingFinishedFirings()
    {
        var work = new Work { Blocked = { "review" } };
        await using var h = new PatternHarness(Options());
        h.Agent("T.Research", async (ctx, ct) =>
        {
            await work.RunAsync("research", ct);
            return J("""{"facts": ["a"]}""");
        });
        h.Agent("T.Review", async (ctx, ct) =>
        {
            await work.RunAsync("review", ct);
            return J("""{"ok": true}""");
        });
        var wf = await h.LoadAsync("wf.yaml", """
            ordo: 1
            workflow: durable-board
            version: 1
            artifacts:
              research: { schema: { type: object, required: [facts] } }
              review:   { schema: { type: object, required: [ok] } }
            agents:
              researcher: { kind: code, type: T.Research, output: research }
              reviewer:   { kind: code, type: T.Review, output: review }
            steps:
              - id: board
                board:
                  rules:
                    - { when: "artifacts.research === undefined", run: researcher }
                    - { when: "artifacts.research !== undefined && artifacts.review === undefined", run: reviewer }
                  until: "artifacts.review !== undefined"
                  max_firings: 5
            """);
        var id = await h.SubmitAsync(wf);

        await StopMidwayAsync(h, id, work.Started("review"));
        var state = await FinishOnANewRuntimeAsync(h, work, id);

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal((1, 2), (work.Runs("research"), work.Runs("review")));
        var firings = (await h.UnitsAsync(id)).Where(u => u.Phase == "firing").ToList();
        Assert.Equal(["researcher", "reviewer"], firings.Select(f => f.Data.GetProperty("agent").GetString()));
    }

    [Fact]
    public async Task Approval_DecisionsSurviveARestart_TheTwoPersonRuleHoldsAcrossRuntimes()
    {
        await using var h = new PatternHarness(Options());
        h.Agent("T.Post", "{\"posted\": true}");
        var wf = await h.LoadAsync("wf.yaml", """
            ordo: 1
            workflow: durable-approval
            version: 1
            agents:
              poster: { kind: code, type: T.Post }
            steps:
              - { id: approve, approval: { role: approver, count: 2 }, next: post }
              - { id: post, agent: poster }
            """);
        var state = await h.RunAsync(wf);
        Assert.Equal(JobStatus.WaitingApproval, state.Status);
        await h.Runtime.DecideAsync(state.JobId, "approve#1", "bob", approve: true, null);

        var second = h.NewRuntime(Options());
        await Assert.ThrowsAsync<ApprovalException>(() => second.DecideAsync(state.JobId, "approve#1", "bob", approve: true, null));
        Assert.Equal("approved", (await second.DecideAsync(state.JobId, "approve#1", "carol", approve: true, null)).Status);
        state = await h.ContinueAsync(state.JobId, second);

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("""["bob","carol"]""", Raw(state.Steps["approve"].Output!.Value.GetProperty("approvers")));
        Assert.Equal(1, h.Calls("T.Post"));
    }
}
