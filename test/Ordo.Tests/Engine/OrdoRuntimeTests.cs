using System.Collections.Concurrent;
using System.Text.Json;
using Ordo.Engine;
using Ordo.Events;
using Ordo.State;
using Ordo.Storage;
using Ordo.Workflows;
using static Ordo.Tests.Engine.EngineHarness;

namespace Ordo.Tests.Engine;

public sealed class OrdoRuntimeTests
{
    private static WorkflowDefinition Chain(int n, string name = "chain")
    {
        var b = WorkflowBuilder.Create(name, 1);
        for (var i = 1; i <= n; i++)
        {
            var prev = "n" + (i - 1);
            var next = i < n ? "n" + (i + 1) : null;
            b.Step("n" + i, s =>
            {
                s.Code(ctx => Int(ReadI(ctx, prev) + 1));
                if (next is not null) s.Next(next);
            });
        }

        return b.Build();
    }

    [Fact]
    public async Task Chain_CompletesWithEveryStepOnce_AndAnIntactChain()
    {
        await using var h = new EngineHarness();
        var state = await h.RunAsync(Chain(10));
        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal(10, state.Steps["n10"].Output!.Value.GetProperty("i").GetInt32());
        var events = await h.EventsAsync(state.JobId);
        Assert.Equal(10, events.Count(e => e.Type == EventTypes.StepSucceeded));
        Assert.Equal(EventTypes.JobCompleted, events[^1].Type);
        Assert.True((await AuditVerifier.VerifyAsync(h.Store, state.JobId)).Intact);
        Assert.True((await h.Store.GetQueueSummaryAsync(state.JobId, DateTimeOffset.UtcNow.AddHours(1))).IsEmpty);
    }

    [Fact]
    public async Task EveryStepHasScheduledStartedSucceeded_InThatOrder()
    {
        await using var h = new EngineHarness();
        var state = await h.RunAsync(Chain(3));
        var types = await h.TypesAsync(state.JobId);
        Assert.Equal(
        [
            "JobSubmitted", "StepScheduled:n1", "StepStarted:n1", "StepSucceeded:n1", "StepScheduled:n2", "StepStarted:n2",
            "StepSucceeded:n2", "StepScheduled:n3", "StepStarted:n3", "StepSucceeded:n3", "JobCompleted",
        ], types);
    }

    [Fact]
    public async Task Routes_TakeTheFirstMatchingCondition()
    {
        var wf = WorkflowBuilder.Create("route", 1)
            .Step("start", s => s.Transform("level", "${ input.level }").When("artifacts.level > 5", "high").When("artifacts.level > 2", "mid").Next("low"))
            .Step("high", s => s.Transform("band", "high"))
            .Step("mid", s => s.Transform("band", "mid"))
            .Step("low", s => s.Transform("band", "low"))
            .Build();
        await using var h = new EngineHarness();
        foreach (var (level, band) in new[] { (9, "high"), (3, "mid"), (1, "low") })
        {
            var state = await h.RunAsync(wf, new { level });
            Assert.Equal(JobStatus.Completed, state.Status);
            Assert.Equal(band, state.Artifacts["band"].Verified!.Value.GetString());
            Assert.Equal(2, state.Steps.Count);
        }
    }

    [Fact]
    public async Task NoMatchingRoute_EndsTheJob()
    {
        var wf = WorkflowBuilder.Create("noroute", 1)
            .Step("a", s => s.Transform("x", 1).When("false", "b"))
            .Step("b", s => s.Transform("y", 2))
            .Build();
        await using var h = new EngineHarness();
        var state = await h.RunAsync(wf);
        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.False(state.Steps.ContainsKey("b"));
    }

    [Fact]
    public async Task RouteToFail_FailsTheJobWithAReason()
    {
        var wf = WorkflowBuilder.Create("tofail", 1).Step("a", s => s.Transform("x", 1).Next(Route.Fail)).Build();
        await using var h = new EngineHarness();
        var state = await h.RunAsync(wf);
        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains("'a' routed to 'fail'", state.Reason);
    }

    [Fact]
    public async Task RouteConditionThatThrows_FailsTheJobNamingTheStep()
    {
        var wf = WorkflowBuilder.Create("badroute", 1)
            .Step("a", s => s.Transform("x", 1).When("input.missing.deeper > 1", "b").Next("b"))
            .Step("b", s => s.Transform("y", 2))
            .Build();
        await using var h = new EngineHarness();
        var state = await h.RunAsync(wf);
        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains("step 'a'", state.Reason);
        Assert.Contains("input.missing.deeper", state.Reason);
    }

    [Fact]
    public async Task RetryableFailure_IsRetried_ThenSucceeds()
    {
        var attempts = 0;
        var wf = WorkflowBuilder.Create("retry", 1)
            .Step("flaky", s => s.Code(ctx => Interlocked.Increment(ref attempts) < 3 ? throw new InvalidOperationException("boom " + ctx.Step.Attempt) : Int(1)).Retry(3, TimeSpan.Zero))
            .Build();
        await using var h = new EngineHarness();
        var state = await h.RunAsync(wf);
        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal(3, state.Steps["flaky"].Attempts);
        var events = await h.EventsAsync(state.JobId);
        var failures = events.Where(e => e.Type == EventTypes.StepFailed).ToList();
        Assert.Equal(2, failures.Count);
        Assert.All(failures, f => Assert.True(f.GetPayload<StepFailedPayload>().WillRetry));
        Assert.Equal([1, 2], failures.Select(f => f.Attempt!.Value));
        Assert.Contains("boom 1", failures[0].GetPayload<StepFailedPayload>().Message);
    }

    [Fact]
    public async Task ExhaustedRetries_FailTheJob_NamingStepAttemptsAndError()
    {
        var wf = WorkflowBuilder.Create("exhaust", 1)
            .Step("bad", s => s.Code(ctx => throw new InvalidOperationException("always")).Retry(2, TimeSpan.Zero))
            .Build();
        await using var h = new EngineHarness();
        var state = await h.RunAsync(wf);
        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains("step 'bad' failed after 2 attempts", state.Reason);
        Assert.Contains("always", state.Reason);
        var failed = (await h.EventsAsync(state.JobId)).Last(e => e.Type == EventTypes.StepFailed).GetPayload<StepFailedPayload>();
        Assert.False(failed.WillRetry);
        Assert.Equal(EventTypes.JobFailed, (await h.EventsAsync(state.JobId))[^1].Type);
    }

    [Fact]
    public async Task RetryBackoff_IsExponentialWithFullJitter_AndDelaysTheNextAttempt()
    {
        var policy = new RetryPolicy { MaxAttempts = 5, Backoff = TimeSpan.FromSeconds(1), MaxBackoff = TimeSpan.FromSeconds(3) };
        Assert.Equal(TimeSpan.FromSeconds(1), policy.DelayBefore(2, 0.999999).RoundTo());
        Assert.Equal(TimeSpan.FromSeconds(2), policy.DelayBefore(3, 0.999999).RoundTo());
        Assert.Equal(TimeSpan.FromSeconds(3), policy.DelayBefore(4, 0.999999).RoundTo());
        Assert.Equal(TimeSpan.FromSeconds(3), policy.DelayBefore(9, 0.999999).RoundTo());
        Assert.Equal(TimeSpan.FromSeconds(1), policy.DelayBefore(3, 0.5).RoundTo());
        Assert.Equal(TimeSpan.Zero, policy.DelayBefore(3, 0));

        var calls = 0;
        var wf = WorkflowBuilder.Create("backoff", 1)
            .Step("flaky", s => s.Code(ctx => Interlocked.Increment(ref calls) == 1 ? throw new InvalidOperationException("once") : Int(1)).Retry(2, TimeSpan.FromMilliseconds(200)))
            .Build();
        await using var h = new EngineHarness(new OrdoRuntimeOptions { Workers = 1, PollInterval = TimeSpan.FromMilliseconds(5), Random = new Random(7) });
        var state = await h.RunAsync(wf);
        Assert.Equal(JobStatus.Completed, state.Status);
        var events = await h.EventsAsync(state.JobId);
        var failed = events.Single(e => e.Type == EventTypes.StepFailed).GetPayload<StepFailedPayload>();
        Assert.InRange(failed.RetryDelayMs!.Value, 0, 200);
        var rescheduled = events.Single(e => e.Type == EventTypes.StepScheduled && e.Attempt == 2);
        var started = events.Single(e => e.Type == EventTypes.StepStarted && e.Attempt == 2);
        Assert.True(started.Timestamp >= rescheduled.Timestamp.AddMilliseconds(failed.RetryDelayMs.Value - 1));
    }

    [Fact]
    public async Task Loop_RevisitsUpToMaxIterations()
    {
        var wf = WorkflowBuilder.Create("loop", 1)
            .Step("count", s => s.Code(ctx => Int(ReadI(ctx, "count") + 1)).Loop(5).When("steps.count.output.i < 4", "count").Next("done"))
            .Step("done", s => s.Transform("total", "${ steps.count.output.i }"))
            .Build();
        await using var h = new EngineHarness();
        var state = await h.RunAsync(wf);
        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal(4, state.Artifacts["total"].Verified!.Value.GetInt32());
        Assert.Equal(4, state.Steps["count"].Visit);
        var visits = (await h.EventsAsync(state.JobId)).Where(e => e.Type == EventTypes.StepSucceeded && e.StepId == "count").Select(e => e.Visit!.Value);
        Assert.Equal([1, 2, 3, 4], visits);
    }

    [Fact]
    public async Task Loop_BeyondMaxIterations_FailsTheJob()
    {
        var wf = WorkflowBuilder.Create("loopmax", 1)
            .Step("spin", s => s.Code(ctx => Int(ReadI(ctx, "spin") + 1)).Loop(3).When("true", "spin"))
            .Build();
        await using var h = new EngineHarness();
        var state = await h.RunAsync(wf);
        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains("loop.max_iterations (3)", state.Reason);
        Assert.Equal(3, (await h.EventsAsync(state.JobId)).Count(e => e.Type == EventTypes.StepSucceeded));
    }

    [Fact]
    public async Task ContractViolation_RejectsTheArtifact_FailsTheStep_AndNeverPropagates()
    {
        var wf = WorkflowBuilder.Create("contract", 1)
            .Artifact("total", """{ "type": "object", "required": ["amount"], "properties": { "amount": { "type": "number" } } }""")
            .Step("make", s => s.Code(ctx => ctx.Step.Attempt == 1 ? Json.Of(new { amount = "twelve" }) : Json.Of(new { amount = 12 }), output: "total").Retry(2, TimeSpan.Zero).Next("use"))
            .Step("use", s => s.Transform("seen", "${ artifacts.total.amount }"))
            .Build();
        await using var h = new EngineHarness();
        var state = await h.RunAsync(wf);
        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal(12, state.Artifacts["seen"].Verified!.Value.GetInt32());
        var events = await h.EventsAsync(state.JobId);
        var rejected = events.Single(e => e.Type == EventTypes.ArtifactRejected).GetPayload<ArtifactVerdictPayload>();
        Assert.Equal("total", rejected.Name);
        Assert.Equal(1, rejected.Version);
        Assert.Contains(rejected.Errors!, e => e.Contains("$.amount", StringComparison.Ordinal));
        var failed = events.Single(e => e.Type == EventTypes.StepFailed).GetPayload<StepFailedPayload>();
        Assert.Equal("contract_violation", failed.Error);
        Assert.Equal(2, state.Artifacts["total"].Verified!.Version);
    }

    [Fact]
    public async Task ContractViolationOnEveryAttempt_FailsTheJob_AndTheValueIsNeverVerified()
    {
        var wf = WorkflowBuilder.Create("contract2", 1)
            .Artifact("total", """{ "type": "object", "required": ["amount"] }""")
            .Step("make", s => s.Code(ctx => Json.Of(new { other = 1 }), output: "total").Retry(2, TimeSpan.Zero).Next("use"))
            .Step("use", s => s.Transform("seen", 1))
            .Build();
        await using var h = new EngineHarness();
        var state = await h.RunAsync(wf);
        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Null(state.Artifacts["total"].Verified);
        Assert.Equal("rejected", state.Artifacts["total"].Latest.Status);
        Assert.False(state.Steps.ContainsKey("use"));
    }

    [Fact]
    public async Task Timeout_FailsTheAttempt_AsRetryable()
    {
        var wf = WorkflowBuilder.Create("timeout", 1)
            .Step("slow", s => s.Code(async (ctx, ct) =>
            {
                if (ctx.Step.Attempt == 1) await Task.Delay(TimeSpan.FromSeconds(30), ct);
                return Int(1);
            }).Timeout(TimeSpan.FromMilliseconds(100)).Retry(2, TimeSpan.Zero))
            .Build();
        await using var h = new EngineHarness();
        var state = await h.RunAsync(wf);
        Assert.Equal(JobStatus.Completed, state.Status);
        var failed = (await h.EventsAsync(state.JobId)).Single(e => e.Type == EventTypes.StepFailed).GetPayload<StepFailedPayload>();
        Assert.Equal("timeout", failed.Error);
        Assert.Contains("100ms", failed.Message);
    }

    [Fact]
    public async Task Cancel_WhileAStepRuns_DiscardsItsResult_AndNothingElseRuns()
    {
        var inStep = new TaskCompletionSource();
        var release = new TaskCompletionSource();
        var secondRan = false;
        var wf = WorkflowBuilder.Create("cancel", 1)
            .Step("a", s => s.Code(async (ctx, ct) =>
            {
                inStep.TrySetResult();
                await release.Task.WaitAsync(ct);
                return Int(1);
            }).Next("b"))
            .Step("b", s => s.Code(ctx =>
            {
                secondRan = true;
                return Int(2);
            }))
            .Build();
        await using var h = new EngineHarness();
        var job = await h.Runtime.SubmitAsync(wf, null);
        var run = h.Runtime.RunAsync(new RunRequest { RootJobId = job.JobId, UntilIdle = true });
        await inStep.Task;
        Assert.True(await h.Runtime.CancelAsync(job.JobId, "test", "tester"));
        release.SetResult();
        await run;
        var state = await h.Runtime.GetStateAsync(job.JobId);
        Assert.Equal(JobStatus.Cancelled, state!.Status);
        Assert.False(secondRan);
        var events = await h.EventsAsync(job.JobId);
        Assert.DoesNotContain(events, e => e.Type == EventTypes.StepSucceeded);
        Assert.Equal(EventTypes.JobCancelled, events[^1].Type);
        Assert.False(await h.Runtime.CancelAsync(job.JobId, "again", "tester"));
        Assert.True((await AuditVerifier.VerifyAsync(h.Store, job.JobId)).Intact);
    }

    [Fact]
    public async Task DuplicateDelivery_AfterLeaseExpiry_IsAppliedOnce()
    {
        // Worker A takes the step and stalls past its lease; worker B takes it over and finishes; A's late result is discarded.
        var started = new TaskCompletionSource();
        var release = new TaskCompletionSource();
        var runs = 0;
        var wf = WorkflowBuilder.Create("dup", 1)
            .Step("a", s => s.Code(async (ctx, ct) =>
            {
                if (Interlocked.Increment(ref runs) == 1)
                {
                    started.TrySetResult();
                    await release.Task;
                }

                return Int(ctx.Step.Attempt);
            }))
            .Build();
        var store = new Ordo.Testing.InMemoryOrdoStore();
        await using var a = new EngineHarness(new OrdoRuntimeOptions { Workers = 1, LeaseDuration = TimeSpan.FromMilliseconds(200), PollInterval = TimeSpan.FromMilliseconds(5) }, store: store);
        var job = await a.Runtime.SubmitAsync(wf, null);
        using var stopA = new CancellationTokenSource();
        var runA = a.Runtime.RunAsync(new RunRequest { RootJobId = job.JobId, UntilIdle = false }, stopA.Token);
        await started.Task;
        // A keeps renewing its lease while alive; simulate a stalled worker by renewing nothing: take the item with B after expiry.
        await using var b = new EngineHarness(new OrdoRuntimeOptions { Workers = 1, LeaseDuration = TimeSpan.FromSeconds(30), PollInterval = TimeSpan.FromMilliseconds(5), TimeProvider = new ShiftedTime(TimeSpan.FromMinutes(5)) }, store: store);
        b.Runtime.Workflows.Register(wf);
        await b.Runtime.RunAsync(new RunRequest { RootJobId = job.JobId, UntilIdle = true });
        release.SetResult();
        await stopA.CancelAsync();
        await runA;
        var events = await b.EventsAsync(job.JobId);
        Assert.Single(events, e => e.Type == EventTypes.StepSucceeded);
        Assert.Equal(2, events.Count(e => e.Type == EventTypes.StepStarted));
        Assert.Equal(2, events.Where(e => e.Type == EventTypes.StepStarted).Last().GetPayload<StepStartedPayload>().Delivery);
        Assert.True((await AuditVerifier.VerifyAsync(store, job.JobId)).Intact);
    }

    [Fact]
    public async Task GracefulStop_ReleasesTheLease_AndAnotherRunFinishesTheJob()
    {
        var entered = new TaskCompletionSource();
        var executions = new ConcurrentBag<int>();
        var wf = WorkflowBuilder.Create("stop", 1)
            .Step("a", s => s.Code(async (ctx, ct) =>
            {
                executions.Add(1);
                if (executions.Count == 1)
                {
                    entered.TrySetResult();
                    await Task.Delay(Timeout.Infinite, ct);
                }

                return Int(1);
            }).Next("b"))
            .Step("b", s => s.Code(ctx => Int(2)))
            .Build();
        var store = new Ordo.Testing.InMemoryOrdoStore();
        await using (var first = new EngineHarness(new OrdoRuntimeOptions { Workers = 1, ShutdownGrace = TimeSpan.FromMilliseconds(50), PollInterval = TimeSpan.FromMilliseconds(5) }, store: store))
        {
            var job = await first.Runtime.SubmitAsync(wf, null);
            using var stop = new CancellationTokenSource();
            var run = first.Runtime.RunAsync(new RunRequest { RootJobId = job.JobId, UntilIdle = false }, stop.Token);
            await entered.Task;
            await stop.CancelAsync();
            var summary = await run;
            Assert.True(summary.Stopped);
            var queue = await store.GetQueueSummaryAsync(job.JobId, DateTimeOffset.UtcNow);
            Assert.Equal(1, queue.Ready);
        }

        await using var second = new EngineHarness(store: store);
        second.Runtime.Workflows.Register(wf);
        var jobId = (await store.ListJobsAsync(new JobQuery()))[0].JobId;
        await second.Runtime.RunAsync(new RunRequest { RootJobId = jobId, UntilIdle = true });
        var state = await second.Runtime.GetStateAsync(jobId);
        Assert.Equal(JobStatus.Completed, state!.Status);
        Assert.Single(await second.EventsAsync(jobId), e => e.Type == EventTypes.StepSucceeded && e.StepId == "a");
    }

    [Fact]
    public async Task PoisonItem_WhoseLeaseWasLostTooOften_FailsTheStep_NamingTheWorkers_ButReleasesDoNotCount()
    {
        var wf = WorkflowBuilder.Create("poison", 1).Step("a", s => s.Code(ctx => Int(1))).Build();
        var store = new Ordo.Testing.InMemoryOrdoStore();
        await using var h = new EngineHarness(new OrdoRuntimeOptions { Workers = 1, MaxDeliveries = 2, PollInterval = TimeSpan.FromMilliseconds(5) }, store: store);
        var job = await h.Runtime.SubmitAsync(wf, null);
        var now = DateTimeOffset.UtcNow;

        // Graceful stops give the item back: any number of them is no sign of a poison item.
        for (var i = 0; i < 5; i++)
        {
            var item = Assert.Single(await store.ClaimAsync(new Ordo.Queue.ClaimRequest { Owner = "polite" + i, LeaseDuration = TimeSpan.FromSeconds(1), Now = now }));
            Assert.Equal(0, item.LostDeliveries);
            Assert.True(await store.ReleaseAsync(item.Lease, now));
        }

        for (var i = 0; i < 3; i++)
        {
            // Workers that took the item and died without a word: each next claim finds the lease lost.
            var item = Assert.Single(await store.ClaimAsync(new Ordo.Queue.ClaimRequest { Owner = "ghost" + i, LeaseDuration = TimeSpan.FromSeconds(1), Now = now.AddMinutes(i * 10) }));
            Assert.Equal(i, item.LostDeliveries);
        }

        await using var late = new EngineHarness(new OrdoRuntimeOptions { Workers = 1, MaxDeliveries = 2, PollInterval = TimeSpan.FromMilliseconds(5), TimeProvider = new ShiftedTime(TimeSpan.FromHours(1)) }, store: store);
        late.Runtime.Workflows.Register(wf);
        await late.Runtime.RunAsync(new RunRequest { RootJobId = job.JobId, UntilIdle = true });
        var state = await late.Runtime.GetStateAsync(job.JobId);
        Assert.Equal(JobStatus.Failed, state!.Status);
        Assert.Contains("lost 3 times", state.Reason);
        Assert.Contains("ghost0, ghost1, ghost2", state.Reason);
        var taken = (await late.EventsAsync(job.JobId)).Where(e => e.Type == EventTypes.StepStarted).Select(e => e.GetPayload<StepStartedPayload>().TakenOverFrom).ToList();
        Assert.Equal([null, null, null, null, null, null, "ghost0", "ghost1", "ghost2"], taken);
    }

    [Fact]
    public async Task Submit_InvalidInput_IsRefused_AndCreatesNothing()
    {
        var wf = WorkflowBuilder.Create("typed", 1)
            .Input("""{ "type": "object", "required": ["n"], "properties": { "n": { "type": "integer" } } }""")
            .Step("a", s => s.Transform("x", "${ input.n }"))
            .Build();
        await using var h = new EngineHarness();
        var e = await Assert.ThrowsAsync<OrdoValidationException>(() => h.Runtime.SubmitAsync(wf, Json.Of(new { n = "seven" })));
        Assert.Contains(e.Problems, p => p.Path == "$.n");
        Assert.Empty(await h.Store.ListJobsAsync(new JobQuery()));
        var ok = await h.RunAsync(wf, new { n = 7 });
        Assert.Equal(7, ok.Artifacts["x"].Verified!.Value.GetInt32());
    }

    [Fact]
    public async Task Observers_SeeEveryCommittedEventOnce()
    {
        var observer = new Collecting();
        var options = new OrdoRuntimeOptions { Workers = 2, PollInterval = TimeSpan.FromMilliseconds(5) };
        options.Observers.Add(observer);
        await using var h = new EngineHarness(options);
        var state = await h.RunAsync(Chain(5));
        var seen = observer.Events.Where(e => e.JobId == state.JobId).Select(e => e.Seq).Order().ToList();
        Assert.Equal(Enumerable.Range(1, (int)state.Seq).Select(i => (long)i), seen);
    }

    [Fact]
    public async Task ManyConcurrentJobs_AllComplete_WithIntactChains()
    {
        await using var h = new EngineHarness(new OrdoRuntimeOptions { Workers = 8, PollInterval = TimeSpan.FromMilliseconds(5) });
        var wf = Chain(5);
        var jobs = new List<JobId>();
        for (var i = 0; i < 50; i++) jobs.Add((await h.Runtime.SubmitAsync(wf, null)).JobId);
        await h.Runtime.RunAsync(new RunRequest { UntilIdle = true });
        foreach (var id in jobs)
        {
            var s = await h.Runtime.GetStateAsync(id);
            Assert.Equal(JobStatus.Completed, s!.Status);
            Assert.True((await AuditVerifier.VerifyAsync(h.Store, id)).Intact);
        }
    }

    [Fact]
    public async Task WaitAsync_ReturnsWhenTheJobSettles()
    {
        await using var h = new EngineHarness();
        using var stop = new CancellationTokenSource();
        var run = h.Runtime.RunAsync(new RunRequest { UntilIdle = false }, stop.Token);
        var job = await h.Runtime.SubmitAsync(Chain(3), null);
        var state = await h.Runtime.WaitAsync(job.JobId).WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(JobStatus.Completed, state.Status);
        await stop.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Submit_WhileAWorkerIsFree_HandsTheEntryStepToIt_WithoutAClaim()
    {
        await using var h = new EngineHarness();
        using var stop = new CancellationTokenSource();
        var run = h.Runtime.RunAsync(new RunRequest { UntilIdle = false }, stop.Token);
        var job = await h.Runtime.SubmitAsync(Chain(3), null);
        var item = Assert.Single(job.LeasedItems);
        Assert.Equal("n1", item.Step.StepId);
        Assert.Equal(h.Runtime.Worker, item.Lease.Owner);
        Assert.Equal(JobStatus.Running, job.Status);
        var state = await h.Runtime.WaitAsync(job.JobId).WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(JobStatus.Completed, state.Status);
        var types = await h.TypesAsync(job.JobId);
        Assert.Equal(["JobSubmitted", "StepScheduled:n1", "StepStarted:n1", "StepSucceeded:n1"], types.Take(4));
        Assert.Equal(1, types.Count(t => t == "StepStarted:n1"));
        await stop.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Submit_WhileEveryWorkerIsBusy_QueuesTheEntryStep()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var blocking = WorkflowBuilder.Create("blocking", 1)
            .Step("wait", s => s.Code(async (CodeStepContext _, CancellationToken ct) =>
            {
                entered.TrySetResult();
                await gate.Task.WaitAsync(ct);
                return Int(1);
            }))
            .Build();
        await using var h = new EngineHarness(new OrdoRuntimeOptions { Workers = 1, PollInterval = TimeSpan.FromMilliseconds(5) });
        using var stop = new CancellationTokenSource();
        var run = h.Runtime.RunAsync(new RunRequest { UntilIdle = false }, stop.Token);
        var first = await h.Runtime.SubmitAsync(blocking, null);
        await entered.Task.WaitAsync(TimeSpan.FromSeconds(20));
        var second = await h.Runtime.SubmitAsync(Chain(2), null);
        Assert.Empty(second.LeasedItems);
        Assert.Equal(JobStatus.Queued, second.Status);
        gate.SetResult();
        Assert.Equal(JobStatus.Completed, (await h.Runtime.WaitAsync(first.JobId).WaitAsync(TimeSpan.FromSeconds(20))).Status);
        Assert.Equal(JobStatus.Completed, (await h.Runtime.WaitAsync(second.JobId).WaitAsync(TimeSpan.FromSeconds(20))).Status);
        await stop.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Submit_WithNoWorkersRunning_QueuesTheEntryStep()
    {
        await using var h = new EngineHarness();
        var job = await h.Runtime.SubmitAsync(Chain(2), null);
        Assert.Empty(job.LeasedItems);
        await h.Runtime.RunAsync(new RunRequest { RootJobId = job.JobId });
        Assert.Equal(JobStatus.Completed, (await h.Runtime.GetStateAsync(job.JobId))!.Status);
    }

    private sealed class Collecting : IJobObserver
    {
        public ConcurrentBag<EventEnvelope> Events { get; } = [];

        public void OnCommitted(JobState state, IReadOnlyList<EventEnvelope> events)
        {
            foreach (var e in events) Events.Add(e);
        }
    }
}

/// <summary>The system clock, shifted: a runtime that lives "later" sees every lease of the present as expired.</summary>
internal sealed class ShiftedTime(TimeSpan shift) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + shift;
}

internal static class TimeSpanTestExtensions
{
    public static TimeSpan RoundTo(this TimeSpan t) => TimeSpan.FromMilliseconds(Math.Round(t.TotalMilliseconds));
}
