using System.Text.Json;
using Ordo.Engine;
using Ordo.Events;
using Ordo.State;
using Ordo.Workflows;
using static Ordo.Tests.Engine.EngineHarness;

namespace Ordo.Tests.Engine;

/// <summary>
/// Steps that start while the commit before them is being written (<see cref="OrdoRuntimeOptions.StartStepsEarly"/>);
/// where pure steps follow each other, each has a commit of its own here (<see cref="OrdoRuntimeOptions.PureStepsPerCommit"/> 1).
/// </summary>
public sealed class EarlyStartTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AChainOfPureSteps_WritesTheSameLog_WhetherStepsStartEarlyOrNot(bool early)
    {
        var runs = new int[21];
        await using var h = new EngineHarness(new OrdoRuntimeOptions { Workers = 2, PollInterval = TimeSpan.FromMilliseconds(5), StartStepsEarly = early, PureStepsPerCommit = 1 });
        var state = await h.RunAsync(Chain(20, onRun: i => Interlocked.Increment(ref runs[i])));

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal(20, state.Steps["n20"].Output!.Value.GetProperty("i").GetInt32());
        Assert.All(runs.Skip(1), r => Assert.Equal(1, r));
        var types = await h.TypesAsync(state.JobId);
        Assert.Equal(Enumerable.Range(1, 20).Select(k => $"{EventTypes.StepSucceeded}:n{k}"), types.Where(t => t.StartsWith(EventTypes.StepSucceeded, StringComparison.Ordinal)));
        Assert.Equal(EventTypes.JobCompleted, types[^1]);
        Assert.True((await AuditVerifier.VerifyAsync(h.Store, state.JobId)).Intact);
    }

    /// <summary>Runs <c>a</c> (pure) then <c>b</c>, cancelling the job while <c>a</c> runs; returns how often <c>b</c> ran, and the log.</summary>
    private static async Task<(int SecondRuns, JobState State, List<EventEnvelope> Events, bool Intact)> CancelDuringFirstAsync(bool secondPure)
    {
        var inStep = new TaskCompletionSource();
        var release = new TaskCompletionSource();
        var secondRuns = 0;
        var wf = WorkflowBuilder.Create("cancel-early", 1)
            .Step("a", s => s.Code(async (ctx, ct) =>
            {
                inStep.TrySetResult();
                await release.Task.WaitAsync(ct);
                return Int(1);
            }, pure: true).Next("b"))
            .Step("b", s => s.Code(ctx =>
            {
                Interlocked.Increment(ref secondRuns);
                return Int(2);
            }, pure: secondPure))
            .Build();
        await using var h = new EngineHarness();
        var job = await h.Runtime.SubmitAsync(wf, null);
        var run = h.Runtime.RunAsync(new RunRequest { RootJobId = job.JobId, UntilIdle = true });
        await inStep.Task;
        Assert.True(await h.Runtime.CancelAsync(job.JobId, "test", "tester"));
        release.SetResult();
        await run;
        return (secondRuns, (await h.Runtime.GetStateAsync(job.JobId))!, await h.EventsAsync(job.JobId), (await AuditVerifier.VerifyAsync(h.Store, job.JobId)).Intact);
    }

    [Fact]
    public async Task APureStep_StartedBeforeACommitThatIsRefused_IsDroppedUnwritten()
    {
        var (secondRuns, state, events, intact) = await CancelDuringFirstAsync(secondPure: true);

        // b may have run once, on the state a's refused commit would have led to; nothing of it is in the log.
        Assert.InRange(secondRuns, 0, 1);
        Assert.Equal(JobStatus.Cancelled, state.Status);
        Assert.DoesNotContain(events, e => e.StepId == "b");
        Assert.DoesNotContain(events, e => e.Type == EventTypes.StepSucceeded);
        Assert.Equal(EventTypes.JobCancelled, events[^1].Type);
        Assert.True(intact);
    }

    [Fact]
    public async Task AStepThatIsNotPure_NeverStartsBeforeTheCommitBeforeIt()
    {
        var (secondRuns, state, _, intact) = await CancelDuringFirstAsync(secondPure: false);

        Assert.Equal(0, secondRuns);
        Assert.Equal(JobStatus.Cancelled, state.Status);
        Assert.True(intact);
    }

    [Fact]
    public async Task TransformSteps_StartEarly_AndKeepTheirOutputs()
    {
        var wf = WorkflowBuilder.Create("transforms", 1)
            .Step("a", s => s.Transform("x", "${ input.n + 1 }").Next("b"))
            .Step("b", s => s.Transform("y", "${ steps.a.output.x * 2 }").Next("c"))
            .Step("c", s => s.Transform("z", "${ steps.b.output.y + 3 }"))
            .Build();
        await using var h = new EngineHarness(new OrdoRuntimeOptions { Workers = 2, PollInterval = TimeSpan.FromMilliseconds(5), PureStepsPerCommit = 1 });
        var state = await h.RunAsync(wf, new { n = 4 });

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal(13, state.Steps["c"].Output!.Value.GetProperty("z").GetInt32());
        Assert.True((await AuditVerifier.VerifyAsync(h.Store, state.JobId)).Intact);
    }
}
