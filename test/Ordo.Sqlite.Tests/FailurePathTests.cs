using System.Text.Json;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Ordo.Engine;
using Ordo.Events;
using Ordo.Queue;
using Ordo.State;
using Ordo.Storage;
using Ordo.Tools;
using Ordo.Workflows;

namespace Ordo.Sqlite.Tests;

/// <summary>
/// The runtime's failure paths, each with a real fault: a database that fills up mid-run, a store whose claims fail, a
/// step that ignores its timeout and calls a tool afterwards, a code agent that calls tools in parallel, a host whose own
/// hosted service must survive <c>WithoutWorkers</c>.
/// </summary>
public sealed class FailurePathTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "ordo-fail-" + Guid.NewGuid().ToString("N"));

    public FailurePathTests() => Directory.CreateDirectory(_dir);

    private string Db => Path.Combine(_dir, "ordo.db");

    [Fact]
    public async Task ADatabaseThatFillsUpMidRun_EndsTheRunClearly_CommitsNothingHalf_AndTheJobsFinishOnceThereIsRoom()
    {
        // Steps that write a good deal each, so that the file must grow while the jobs run.
        var workflow = WorkflowBuilder.Create("filler", 1)
            .Step("a", s => s.Transform("blob", "${ 'x'.repeat(20000) }").Next("b"))
            .Step("b", s => s.Transform("blob2", "${ 'y'.repeat(20000) }").Next("c"))
            .Step("c", s => s.Transform("blob3", "${ 'z'.repeat(20000) }"))
            .Build();
        var jobs = new List<JobId>();
        await using (var store = new SqliteOrdoStore(Db))
        await using (var runtime = new OrdoRuntime(store))
        {
            for (var i = 0; i < 6; i++) jobs.Add((await runtime.SubmitAsync(workflow, null)).JobId);
        }

        long pages;
        using (var c = new SqliteConnection($"Data Source={Db};Pooling=False"))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "PRAGMA page_count";
            pages = (long)cmd.ExecuteScalar()!;
        }

        await using (var full = new SqliteOrdoStore(new SqliteStoreOptions { Path = Db, MaxPageCount = pages + 8 }))
        await using (var runtime = new OrdoRuntime(full, new OrdoRuntimeOptions { Workers = 2 }))
        {
            runtime.Workflows.Register(workflow);
            var e = await Assert.ThrowsAsync<StoreUnavailableException>(() => runtime.RunAsync(new RunRequest()).WaitAsync(TimeSpan.FromSeconds(60)));
            Assert.Contains("the database is full", e.Message);
            Assert.Contains("ordo resume", e.Message);
        }

        await using (var roomy = new SqliteOrdoStore(Db))
        await using (var runtime = new OrdoRuntime(roomy, new OrdoRuntimeOptions { Workers = 2 }))
        {
            runtime.Workflows.Register(workflow);
            foreach (var job in jobs)
            {
                // Nothing was committed half: every log is whole and ends on a state a commit left.
                Assert.True((await AuditVerifier.VerifyAsync(roomy, job)).Intact);
            }

            await runtime.RunAsync(new RunRequest()).WaitAsync(TimeSpan.FromSeconds(60));
            foreach (var job in jobs)
            {
                var state = (await runtime.GetStateAsync(job))!;
                Assert.Equal(JobStatus.Completed, state.Status);
                var events = new List<EventEnvelope>();
                await foreach (var ev in roomy.ReadEventsAsync(job)) events.Add(ev);
                Assert.Equal(3, events.Count(ev => ev.Type == EventTypes.StepSucceeded));
                Assert.True((await AuditVerifier.VerifyAsync(roomy, job)).Intact);
            }
        }
    }

    [Fact]
    public async Task AStoreWhoseClaimsFail_IsRetriedWithBackoff_AndTheRunStillFinishes()
    {
        var workflow = WorkflowBuilder.Create("plain", 1).Step("a", s => s.Transform("x", "${ 1 }")).Build();
        await using var inner = new SqliteOrdoStore(Db);
        var flaky = new FlakyStore(inner, failures: 3);
        await using var runtime = new OrdoRuntime(flaky, new OrdoRuntimeOptions { Workers = 1, PollInterval = TimeSpan.FromMilliseconds(5) });
        var job = await runtime.SubmitAsync(workflow, null);
        await runtime.RunAsync(new RunRequest()).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(JobStatus.Completed, (await runtime.GetStateAsync(job.JobId))!.Status);
        Assert.True(flaky.Failed >= 3);
    }

    [Fact]
    public async Task AWorkerWhoseCommitsFailInTheMiddleOfAChain_GivesBackTheStepItWasOn_AndFinishesTheJobOnceTheStoreRecovers()
    {
        // Twelve steps run one after the other by the same worker; commits 5 to 7 fail as a full disk's would.
        var builder = WorkflowBuilder.Create("chain", 1);
        for (var i = 1; i <= 12; i++)
        {
            var n = i;
            builder.Step($"s{n}", s =>
            {
                var step = s.Transform("n", $"${{ {n} }}");
                if (n < 12) step.Next($"s{n + 1}");
            });
        }

        var workflow = builder.Build();
        await using var inner = new SqliteOrdoStore(Db);
        var flaky = new FlakyStore(inner, failures: 0, failCommitsFrom: 5, failCommits: 3);
        await using var runtime = new OrdoRuntime(flaky, new OrdoRuntimeOptions { Workers = 1, PollInterval = TimeSpan.FromMilliseconds(5) });
        var job = await runtime.SubmitAsync(workflow, null);

        // A long-running worker (not until idle): it waits out the failures, and must not keep the step's lease meanwhile.
        using var stop = new CancellationTokenSource();
        var run = runtime.RunAsync(new RunRequest { UntilIdle = false }, stop.Token);
        JobState? state = null;
        for (var waited = 0; waited < 600 && state?.Status != JobStatus.Completed; waited++)
        {
            await Task.Delay(100);
            state = await runtime.GetStateAsync(job.JobId);
        }

        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(JobStatus.Completed, state!.Status);
        Assert.Empty(await inner.ListLeasesAsync());
        var events = new List<EventEnvelope>();
        await foreach (var e in inner.ReadEventsAsync(job.JobId)) events.Add(e);
        Assert.Equal(12, events.Count(e => e.Type == EventTypes.StepSucceeded));
        Assert.True((await AuditVerifier.VerifyAsync(inner, job.JobId)).Intact);
    }

    [Fact]
    public async Task AStepWhoseCommitFailsEveryTime_ForAnUnexpectedReason_FailsAsCrashed_InsteadOfRunningForever()
    {
        var workflow = WorkflowBuilder.Create("crashing", 1)
            .Step("a", s => s.Transform("n", "${ 1 }").Next("b"))
            .Step("b", s => s.Transform("n", "${ 2 }"))
            .Build();
        await using var inner = new SqliteOrdoStore(Db);
        var store = new SuccessOfStepFails(inner, "b");
        await using var runtime = new OrdoRuntime(store, new OrdoRuntimeOptions { Workers = 1, PollInterval = TimeSpan.FromMilliseconds(5) });
        var job = await runtime.SubmitAsync(workflow, null);
        await runtime.RunAsync(new RunRequest { RootJobId = job.JobId, UntilIdle = true }).WaitAsync(TimeSpan.FromSeconds(60));

        var state = (await runtime.GetStateAsync(job.JobId))!;
        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Equal(5, store.Refused);
        var events = new List<EventEnvelope>();
        await foreach (var e in inner.ReadEventsAsync(job.JobId)) events.Add(e);
        var failed = events.Single(e => e.Type == EventTypes.StepFailed).GetPayload<StepFailedPayload>();
        Assert.Equal("step_crashed", failed.Error);
        Assert.Contains("InvalidOperationException: the success of b cannot be written", failed.Message, StringComparison.Ordinal);
        Assert.Empty(await inner.ListLeasesAsync());
        Assert.True((await AuditVerifier.VerifyAsync(inner, job.JobId)).Intact);
    }

    /// <summary>Refuses, with an unexpected exception, every commit that records the success of one step.</summary>
    private sealed class SuccessOfStepFails(IOrdoStore inner, string stepId) : DelegatingStore(inner)
    {
        public int Refused;

        public override ValueTask<CommitResult> CommitAsync(JobCommit commit, CancellationToken cancellationToken = default)
        {
            if (commit.Events.Any(e => e.Type == EventTypes.StepSucceeded && e.StepId == stepId))
            {
                Interlocked.Increment(ref Refused);
                throw new InvalidOperationException($"the success of {stepId} cannot be written");
            }

            return base.CommitAsync(commit, cancellationToken);
        }
    }

    [Fact]
    public async Task AStepThatIgnoresItsTimeout_FailsOnTime_AndTheToolItCallsAfterwardsNeverRuns()
    {
        var calls = 0;
        var released = new TaskCompletionSource();
        var components = await ToolProjectAsync("count.it", (inv, _) =>
        {
            Interlocked.Increment(ref calls);
            return ValueTask.FromResult(inv.Args);
        });
        components.Code.AddAgent("Stubborn", _ => new DelegateAgent(async (ctx, _) =>
        {
            // Ignores its token on purpose: waits, then tries to act after its time is up.
            await released.Task.ConfigureAwait(false);
            await ctx.Tools.CallAsync("count.it", Json.Of(new { }), CancellationToken.None).ConfigureAwait(false);
            return Json.Of(new { late = true });
        }));
        var workflow = WorkflowBuilder.Create("stubborn", 1)
            .Project(await WorkflowLoader.LoadProjectAsync(Path.Combine(_dir, "ordo.yaml")))
            .Agent(new AgentDefinition { Name = "stubborn", Kind = AgentKind.Code, Type = "Stubborn", Tools = ["count.it"] })
            .Step("slow", s => s.Agent("stubborn").Timeout(TimeSpan.FromMilliseconds(300)).Retry(1))
            .Build(new WorkflowLoadOptions { CodeAgentExists = _ => true, CodeToolExists = _ => true });
        await using var store = new SqliteOrdoStore(Db);
        await using var runtime = new OrdoRuntime(store, new OrdoRuntimeOptions { Workers = 1, ShutdownGrace = TimeSpan.FromMilliseconds(200) }, components);
        var job = await runtime.SubmitAsync(workflow, null);
        var run = runtime.RunAsync(new RunRequest());
        var state = await runtime.WaitAsync(job.JobId).WaitAsync(TimeSpan.FromSeconds(30));
        released.SetResult();
        await run.WaitAsync(TimeSpan.FromSeconds(30));
        await Task.Delay(200);

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains("did not finish within 300ms", state.Reason);
        Assert.Equal(0, calls);
        var events = new List<EventEnvelope>();
        await foreach (var e in store.ReadEventsAsync(job.JobId)) events.Add(e);
        Assert.DoesNotContain(events, e => e.Type is EventTypes.ToolCallRequested or EventTypes.ToolCallSucceeded);
        Assert.Equal(EventTypes.JobFailed, events[^1].Type);
    }

    [Fact]
    public async Task ACodeAgentCallingToolsInParallel_GetsDistinctStableKeys_AndEveryCallIsRecorded()
    {
        var keys = new System.Collections.Concurrent.ConcurrentBag<(int Attempt, string Key)>();
        var components = await ToolProjectAsync("fan.out", async (inv, ct) =>
        {
            await Task.Yield();
            keys.Add((inv.Args.GetProperty("attempt").GetInt32(), inv.IdempotencyKey));
            return inv.Args;
        });
        components.Code.AddAgent("Fanner", _ => new DelegateAgent(async (ctx, _) =>
        {
            var calls = Enumerable.Range(0, 6).Select(i => ctx.Tools.CallAsync("fan.out", Json.Of(new { i, attempt = ctx.Step.Attempt }), CancellationToken.None).AsTask()).ToList();
            await Task.WhenAll(calls).ConfigureAwait(false);
            if (ctx.Step.Attempt == 1) throw new InvalidOperationException("first attempt fails after its calls");
            return Json.Of(new { done = true });
        }));
        var workflow = WorkflowBuilder.Create("fan", 1)
            .Project(await WorkflowLoader.LoadProjectAsync(Path.Combine(_dir, "ordo.yaml")))
            .Agent(new AgentDefinition { Name = "fanner", Kind = AgentKind.Code, Type = "Fanner", Tools = ["fan.out"] })
            .Step("many", s => s.Agent("fanner").Retry(2, TimeSpan.FromMilliseconds(1)))
            .Build(new WorkflowLoadOptions { CodeAgentExists = _ => true, CodeToolExists = _ => true });
        await using var store = new SqliteOrdoStore(Db);
        await using var runtime = new OrdoRuntime(store, new OrdoRuntimeOptions { Workers = 2 }, components);
        var job = await runtime.SubmitAsync(workflow, null);
        await runtime.RunAsync(new RunRequest()).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(JobStatus.Completed, (await runtime.GetStateAsync(job.JobId))!.Status);
        var first = keys.Where(k => k.Attempt == 1).Select(k => k.Key).Order(StringComparer.Ordinal).ToList();
        var second = keys.Where(k => k.Attempt == 2).Select(k => k.Key).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(6, first.Distinct(StringComparer.Ordinal).Count());
        // The retry's calls carry the same keys as the first attempt's: a call repeated after a failure is the same call.
        Assert.Equal(first, second);
        var events = new List<EventEnvelope>();
        await foreach (var e in store.ReadEventsAsync(job.JobId)) events.Add(e);
        Assert.Equal(12, events.Count(e => e.Type == EventTypes.ToolCallRequested));
        Assert.Equal(12, events.Count(e => e.Type == EventTypes.ToolCallSucceeded));
        Assert.Equal(12, events.Where(e => e.Type == EventTypes.ToolCallSucceeded).Select(e => (e.Attempt, e.GetPayload<ToolCallSucceededPayload>().CallId)).Distinct().Count());
    }

    /// <summary>A project with one code tool (effect: write) registered under <paramref name="tool"/>.</summary>
    private async Task<OrdoComponents> ToolProjectAsync(string tool, Func<ToolInvocation, CancellationToken, ValueTask<JsonElement>> run)
    {
        await File.WriteAllTextAsync(Path.Combine(_dir, "ordo.yaml"), "tools: [tools.yaml]\n");
        await File.WriteAllTextAsync(Path.Combine(_dir, "tools.yaml"), $"tools:\n  {tool}: {{ kind: code, effect: write }}\n");
        var components = new OrdoComponents();
        components.Code.AddTool(tool, _ => new DelegateCodeTool(run));
        return components;
    }

    private sealed class DelegateAgent(Func<Agents.AgentContext, CancellationToken, Task<JsonElement>> run) : Agents.ICodeAgent
    {
        public async ValueTask<JsonElement> InvokeAsync(Agents.AgentContext context, CancellationToken cancellationToken) => await run(context, cancellationToken).ConfigureAwait(false);
    }

    [Fact]
    public async Task WithoutWorkers_RemovesOrdosWorkerService_AndKeepsTheHostsOwn()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddHostedService<OwnService>();
        builder.Services.AddOrdo().UseSqlite(Db).WithoutWorkers();
        using var host = builder.Build();
        var hosted = host.Services.GetServices<IHostedService>().ToList();
        Assert.Contains(hosted, h => h is OwnService);
        Assert.DoesNotContain(hosted, h => h is Ordo.Hosting.OrdoWorkerService);
        await Task.CompletedTask;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private sealed class OwnService : BackgroundService
    {
        protected override Task ExecuteAsync(CancellationToken stoppingToken) => Task.CompletedTask;
    }

    /// <summary>
    /// A store whose first claims and queue summaries fail as a busy database's would; and, when asked, whose commits
    /// fail for a while from the Nth on, as a full disk's would.
    /// </summary>
    private sealed class FlakyStore(IOrdoStore inner, int failures, int failCommitsFrom = 0, int failCommits = 0) : DelegatingStore(inner)
    {
        private int _left = failures;
        private readonly int _failures = failures;
        private int _commits;

        public int Failed => _failures - Math.Max(0, Volatile.Read(ref _left));

        private void MaybeFail()
        {
            if (Interlocked.Decrement(ref _left) >= 0) throw new SqliteException("database is locked", 5);
        }

        public override ValueTask<IReadOnlyList<WorkItem>> ClaimAsync(ClaimRequest request, CancellationToken cancellationToken = default)
        {
            MaybeFail();
            return Inner.ClaimAsync(request, cancellationToken);
        }

        public override ValueTask<QueueSummary> GetQueueSummaryAsync(JobId? rootJobId, DateTimeOffset now, CancellationToken cancellationToken = default)
        {
            MaybeFail();
            return Inner.GetQueueSummaryAsync(rootJobId, now, cancellationToken);
        }

        public override ValueTask<CommitResult> CommitAsync(JobCommit commit, CancellationToken cancellationToken = default)
        {
            var n = Interlocked.Increment(ref _commits);
            if (failCommits > 0 && n >= failCommitsFrom && n < failCommitsFrom + failCommits)
            {
                throw new StoreUnavailableException("the database is full: SQLite Error 13: 'database or disk is full'");
            }

            return Inner.CommitAsync(commit, cancellationToken);
        }
    }
}
