using System.Text.Json;
using Ordo.Engine;
using Ordo.Events;
using Ordo.State;
using Ordo.Workflows;
using static Ordo.Tests.Engine.EngineHarness;

namespace Ordo.Tests.Engine;

/// <summary>Consecutive pure steps written by one commit (<see cref="OrdoRuntimeOptions.PureStepsPerCommit"/>).</summary>
public sealed class PureStepGroupTests
{
    /// <summary>Counts the committed batches of events and which steps succeeded in each.</summary>
    private sealed class Batches : IJobObserver
    {
        public List<List<string>> Succeeded { get; } = [];

        public void OnCommitted(JobState state, IReadOnlyList<EventEnvelope> events)
        {
            var steps = events.Where(e => e.Type == EventTypes.StepSucceeded).Select(e => e.StepId!).ToList();
            lock (Succeeded)
            {
                if (steps.Count > 0) Succeeded.Add(steps);
            }
        }
    }

    private static OrdoRuntimeOptions Options(int perCommit, Batches batches, TimeSpan? within = null)
    {
        var options = new OrdoRuntimeOptions
        {
            Workers = 2, PollInterval = TimeSpan.FromMilliseconds(5), PureStepsPerCommit = perCommit,
            // Long enough that a slow first run (the JIT) does not end a group in these tests.
            PureStepsCommitWithin = within ?? TimeSpan.FromSeconds(30),
        };
        options.Observers.Add(batches);
        return options;
    }

    private static async Task<(JobState State, List<string> Types, Batches Batches)> RunAsync(WorkflowDefinition wf, int perCommit, TimeSpan? within = null, object? input = null)
    {
        var batches = new Batches();
        await using var h = new EngineHarness(Options(perCommit, batches, within));
        var state = await h.RunAsync(wf, input);
        Assert.True((await AuditVerifier.VerifyAsync(h.Store, state.JobId)).Intact);
        return (state, await h.TypesAsync(state.JobId), batches);
    }

    [Fact]
    public async Task TenPureSteps_AreWrittenByOneCommit_WithTheLogOfOneCommitEach()
    {
        var runs = new int[11];
        var (grouped, groupedTypes, groupedBatches) = await RunAsync(Chain(10, onRun: i => Interlocked.Increment(ref runs[i])), perCommit: 16);
        var (single, singleTypes, singleBatches) = await RunAsync(Chain(10), perCommit: 1);

        Assert.Equal(JobStatus.Completed, grouped.Status);
        Assert.Equal(10, grouped.Steps["n10"].Output!.Value.GetProperty("i").GetInt32());
        Assert.All(runs.Skip(1), r => Assert.Equal(1, r));
        Assert.Equal(singleTypes, groupedTypes);
        Assert.Equal(single.Steps["n10"].Output!.Value.GetRawText(), grouped.Steps["n10"].Output!.Value.GetRawText());

        // The entry step was handed over with the submission; its commit wrote it and the nine after it.
        Assert.Equal([[.. Enumerable.Range(1, 10).Select(k => $"n{k}")]], groupedBatches.Succeeded);
        Assert.Equal(10, singleBatches.Succeeded.Count);
    }

    [Fact]
    public async Task AGroup_EndsAtPureStepsPerCommit()
    {
        var (state, _, batches) = await RunAsync(Chain(10), perCommit: 4);

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal([4, 4, 2], batches.Succeeded.Select(b => b.Count));
    }

    [Fact]
    public async Task NoStepJoinsAGroup_WhenPureStepsCommitWithinIsZero()
    {
        var (state, _, batches) = await RunAsync(Chain(5), perCommit: 16, within: TimeSpan.Zero);

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.All(batches.Succeeded, b => Assert.Single(b));
    }

    [Fact]
    public async Task AStepThatIsNotPure_IsCommittedOnItsOwn_AndSoIsTheStepBeforeIt()
    {
        var (state, _, batches) = await RunAsync(Chain(6, pure: k => k != 3), perCommit: 16);

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal([["n1", "n2"], ["n3"], ["n4", "n5", "n6"]], batches.Succeeded);
    }

    [Fact]
    public async Task APureStepWithATimeout_RunsOnItsOwn()
    {
        var wf = WorkflowBuilder.Create("timeout", 1)
            .Step("a", s => s.Code(_ => Int(1), pure: true).Next("b"))
            .Step("b", s => s.Code(_ => Int(2), pure: true).Timeout(TimeSpan.FromSeconds(30)).Next("c"))
            .Step("c", s => s.Code(_ => Int(3), pure: true))
            .Build();

        var (state, _, batches) = await RunAsync(wf, perCommit: 16);

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal([["a"], ["b", "c"]], batches.Succeeded);
    }

    [Fact]
    public async Task APureStepThatFails_LeavesTheGroup_AndFailsAndRetriesAsOnItsOwn()
    {
        static WorkflowDefinition Failing(int[] calls) => WorkflowBuilder.Create("failing", 1)
            .Step("a", s => s.Code(_ => Int(1), pure: true).Next("b"))
            .Step("b", s => s.Code(ctx =>
            {
                Interlocked.Increment(ref calls[0]);
                if (ctx.Step.Attempt == 1) throw new InvalidOperationException("first attempts fail");
                return Int(2);
            }, pure: true).Retry(3, TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(1)).Next("c"))
            .Step("c", s => s.Code(_ => Int(3), pure: true))
            .Build();

        int[] grouped = [0], single = [0];
        var (state, types, batches) = await RunAsync(Failing(grouped), perCommit: 16);
        var (_, singleTypes, _) = await RunAsync(Failing(single), perCommit: 1);

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal(singleTypes, types);
        Assert.Single(types, t => t == $"{EventTypes.StepFailed}:b");
        // Run in a's group, b threw: nothing of that run is in the log. It ran again on its own and failed as attempt 1,
        // then succeeded as attempt 2, which c joined.
        Assert.Equal(2, single[0]);
        Assert.Equal(3, grouped[0]);
        Assert.Equal(["a"], batches.Succeeded[0]);
        Assert.Equal(["b", "c"], batches.Succeeded[^1]);
    }

    [Fact]
    public async Task TransformSteps_AreWrittenTogether_AndKeepTheirOutputs()
    {
        var wf = WorkflowBuilder.Create("transforms", 1)
            .Step("a", s => s.Transform("x", "${ input.n + 1 }").Next("b"))
            .Step("b", s => s.Transform("y", "${ steps.a.output.x * 2 }").Next("c"))
            .Step("c", s => s.Transform("z", "${ steps.b.output.y + 3 }"))
            .Build();

        var (state, _, batches) = await RunAsync(wf, perCommit: 16, input: new { n = 4 });

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal(13, state.Steps["c"].Output!.Value.GetProperty("z").GetInt32());
        Assert.Equal([["a", "b", "c"]], batches.Succeeded);
    }

    [Fact]
    public void PureStepsPerCommit_BelowOne_IsRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new OrdoRuntimeOptions { PureStepsPerCommit = 0 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new OrdoRuntimeOptions { PureStepsCommitWithin = TimeSpan.FromMilliseconds(-1) }.Validate());
    }
}
