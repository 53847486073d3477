using System.Collections.Concurrent;
using Ordo.Engine;
using Ordo.Events;
using Ordo.KillSwitches;
using Ordo.State;
using static Ordo.Tests.Patterns.PatternHarness;

namespace Ordo.Tests.Patterns;

/// <summary>
/// A <c>parallel</c> or <c>foreach</c> step reached by a route starts in the commit of the step before it: the log
/// reads as if it had been committed on its own, governance applies to it as to any step, and nothing is lost.
/// </summary>
public sealed class InlineStartTests
{
    private const string Agents = """
        ordo: 1
        workflow: inline-start
        version: 1
        agents:
          echo: { kind: code, type: T.Echo }
        """;

    private static PatternHarness Harness(out Commits commits, int workers = 1)
    {
        commits = new Commits();
        var options = NewOptions(workers);
        options.Observers.Add(commits);
        var h = new PatternHarness(options);
        h.Agent("T.Echo", input => input);
        return h;
    }

    [Fact]
    public async Task AParallelStepAfterAStep_StartsInThatStepsCommit_AndTheLogReadsAsUsual()
    {
        await using var h = Harness(out var commits);
        var wf = await h.LoadAsync("wf.yaml", Agents + "\n" + """
            steps:
              - { id: prep, agent: echo, input: { n: 1 }, next: fan }
              - { id: fan, parallel: [a, b, c], join: merge }
              - { id: a, agent: echo, input: { n: "${ steps.prep.output.n + 1 }" } }
              - { id: b, agent: echo, input: { n: 20 } }
              - { id: c, agent: echo, input: { n: 30 } }
              - { id: merge, agent: echo, input: { sum: "${ steps.fan.output.a.n + steps.fan.output.b.n + steps.fan.output.c.n }" } }
            """);
        var state = await h.RunAsync(wf);

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal(52, state.Steps["merge"].Output!.Value.GetProperty("sum").GetInt32());

        // One commit holds prep's success and the parallel step's start: scheduled, started, its pattern and branches.
        var together = Assert.Single(commits.Of(state.JobId), c => c.Any(e => e.Type == EventTypes.StepSucceeded && e.StepId == "prep"));
        Assert.Equal(
            [EventTypes.StepSucceeded, EventTypes.StepScheduled, EventTypes.StepStarted, EventTypes.PatternStarted],
            together.Take(4).Select(e => e.Type));
        Assert.Equal(["prep", "fan", "fan", "fan"], together.Take(4).Select(e => e.StepId));
        Assert.Equal(3, together.Count(e => e.Type == EventTypes.StepScheduled && e.Scope is not null));

        // The stored log is what was committed, in order, and verifies.
        var events = await h.EventsAsync(state.JobId);
        Assert.Equal(commits.Of(state.JobId).SelectMany(c => c).Select(e => e.Seq), events.Select(e => e.Seq));
        Assert.True((await AuditVerifier.VerifyAsync(h.Store, state.JobId)).Intact);
        Assert.Single(events, e => e.Type == EventTypes.PatternStarted);
        var rebuilt = JobStateReducer.Apply(JobStateReducer.Start(events[0]), events.Skip(1));
        Assert.Equal(StateSnapshotCodec.Encode(rebuilt).Data, StateSnapshotCodec.Encode(state).Data);
    }

    [Fact]
    public async Task AForeachAfterAStep_StartsInThatStepsCommit_OverTheStepsOutput()
    {
        await using var h = Harness(out var commits, workers: 3);
        var wf = await h.LoadAsync("wf.yaml", Agents + "\n" + """
            steps:
              - { id: prep, agent: echo, input: { items: [3, 1, 2] }, next: each }
              - { id: each, foreach: "${ steps.prep.output.items }", do: item, max_concurrency: 2, next: done }
              - { id: item, agent: echo, input: { n: "${ item * 10 }" } }
              - { id: done, agent: echo, input: { all: "${ steps.each.output }" } }
            """);
        var state = await h.RunAsync(wf);

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal([30, 10, 20], state.Steps["done"].Output!.Value.GetProperty("all").EnumerateArray().Select(x => x.GetProperty("n").GetInt32()));
        var together = Assert.Single(commits.Of(state.JobId), c => c.Any(e => e.Type == EventTypes.StepSucceeded && e.StepId == "prep"));
        Assert.Contains(together, e => e.Type == EventTypes.PatternStarted && e.StepId == "each");
        Assert.Equal(2, together.Count(e => e.Type == EventTypes.StepScheduled && e.Scope is not null));
        Assert.True((await AuditVerifier.VerifyAsync(h.Store, state.JobId)).Intact);
    }

    [Fact]
    public async Task AKillSwitchOnParallelSteps_StopsTheJobAtTheParallelStep_AfterItsPredecessorSucceeded()
    {
        await using var h = Harness(out _);
        await h.Store.SetKillSwitchAsync(new KillSwitch("step:parallel", "branching frozen", "ops", DateTimeOffset.UtcNow));
        var wf = await h.LoadAsync("wf.yaml", Agents + "\n" + """
            steps:
              - { id: prep, agent: echo, input: { n: 1 }, next: fan }
              - { id: fan, parallel: [a, b] }
              - { id: a, agent: echo, input: { n: 2 } }
              - { id: b, agent: echo, input: { n: 3 } }
            """);
        var state = await h.RunAsync(wf);

        Assert.Equal(JobStatus.Cancelled, state.Status);
        Assert.Contains("step:parallel", state.Reason);
        Assert.Equal(1, h.Calls("T.Echo"));
        var events = await h.EventsAsync(state.JobId);
        Assert.Contains(events, e => e.Type == EventTypes.StepSucceeded && e.StepId == "prep");
        Assert.DoesNotContain(events, e => e.Type == EventTypes.PatternStarted);
        Assert.Equal(("step:parallel", "step:parallel"), events.Where(e => e.Type == EventTypes.KillSwitchTriggered).Select(e => e.GetPayload<KillSwitchTriggeredPayload>()).Select(p => (p.Target, p.Subject)).Single());
    }

    /// <summary>The events of each commit, as the runtime announces them.</summary>
    private sealed class Commits : IJobObserver
    {
        private readonly ConcurrentQueue<(JobId Job, List<EventEnvelope> Events)> _commits = new();

        public void OnCommitted(JobState state, IReadOnlyList<EventEnvelope> events)
        {
            if (events.Count > 0) _commits.Enqueue((state.JobId, [.. events]));
        }

        public List<List<EventEnvelope>> Of(JobId job) => [.. _commits.Where(c => c.Job == job).Select(c => c.Events)];
    }
}
