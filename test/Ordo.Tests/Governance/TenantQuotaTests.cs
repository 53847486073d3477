using Microsoft.Extensions.Time.Testing;
using Ordo.Engine;
using Ordo.State;
using Ordo.Storage;

namespace Ordo.Tests.Governance;

/// <summary>Tenant quotas from ordo.yaml, checked at submission: what passes, what is refused, and when to try again.</summary>
public sealed class TenantQuotaTests
{
    private static readonly DateTimeOffset Start = new(2026, 3, 2, 9, 0, 0, TimeSpan.Zero);

    private static async Task<(GovernanceHarness H, Ordo.Workflows.WorkflowDefinition Workflow)> ProjectAsync(string quota, FakeTimeProvider time)
    {
        var h = new GovernanceHarness(options: new OrdoRuntimeOptions { Workers = 2, TimeProvider = time, PollInterval = TimeSpan.FromMilliseconds(5), KillSwitchRefresh = TimeSpan.Zero });
        h.Write("ordo.yaml", $$"""
            tenants:
              acme: { quota: { {{quota}} } }
            """);
        h.Write("workflow.yaml", """
            ordo: 1
            workflow: tiny
            version: 1
            steps:
              - { id: only, transform: { set: { done: true } } }
            """);
        return (h, await h.LoadAsync());
    }

    [Fact]
    public async Task JobsPerMinute_RefusesTheSubmissionOverIt_UntilTheFirstLeavesTheMinute()
    {
        var time = new FakeTimeProvider(Start);
        var (h, wf) = await ProjectAsync("jobs_per_minute: 2", time);
        await using (h)
        {
            await h.Runtime.SubmitAsync(wf, null, new SubmitOptions { Tenant = "acme" });
            time.Advance(TimeSpan.FromSeconds(20));
            await h.Runtime.SubmitAsync(wf, null, new SubmitOptions { Tenant = "acme" });
            time.Advance(TimeSpan.FromSeconds(10));
            var e = await Assert.ThrowsAsync<QuotaExceededException>(() => h.Runtime.SubmitAsync(wf, null, new SubmitOptions { Tenant = "acme" }));
            Assert.Equal("jobs_per_minute", e.Quota);
            Assert.Equal(TimeSpan.FromSeconds(30), e.RetryAfter);
            // Another tenant has its own minute.
            await h.Runtime.SubmitAsync(wf, null, new SubmitOptions { Tenant = "globex" });

            time.Advance(e.RetryAfter - TimeSpan.FromMilliseconds(1));
            await Assert.ThrowsAsync<QuotaExceededException>(() => h.Runtime.SubmitAsync(wf, null, new SubmitOptions { Tenant = "acme" }));
            time.Advance(TimeSpan.FromMilliseconds(1));
            await h.Runtime.SubmitAsync(wf, null, new SubmitOptions { Tenant = "acme" });
            Assert.Equal(3, (await h.Store.ListJobsAsync(new JobQuery { Tenant = "acme" })).Count);
        }
    }

    [Fact]
    public async Task JobsPerMinute_ManySubmittersAtOnce_OnlyTheQuotaPasses()
    {
        var time = new FakeTimeProvider(Start);
        var (h, wf) = await ProjectAsync("jobs_per_minute: 5", time);
        await using (h)
        {
            var outcomes = await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => Task.Run(() => SubmitAsync(h, wf))));
            Assert.Equal(5, outcomes.Count(ok => ok));
            time.Advance(TimeSpan.FromMinutes(1));
            outcomes = await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => Task.Run(() => SubmitAsync(h, wf))));
            Assert.Equal(5, outcomes.Count(ok => ok));
            Assert.Equal(10, (await h.Store.ListJobsAsync(new JobQuery { Tenant = "acme" })).Count);
        }
    }

    [Fact]
    public async Task ConcurrentJobs_ManySubmittersAtOnce_OnlyTheQuotaPasses_AndAFinishedJobFreesItsPlace()
    {
        var time = new FakeTimeProvider(Start);
        var (h, wf) = await ProjectAsync("concurrent_jobs: 3", time);
        await using (h)
        {
            var outcomes = await Task.WhenAll(Enumerable.Range(0, 30).Select(_ => Task.Run(() => SubmitAsync(h, wf))));
            Assert.Equal(3, outcomes.Count(ok => ok));
            var e = await Assert.ThrowsAsync<QuotaExceededException>(() => h.Runtime.SubmitAsync(wf, null, new SubmitOptions { Tenant = "acme" }));
            Assert.Equal("concurrent_jobs", e.Quota);
            Assert.Equal(3, e.Current);
            Assert.Equal(QuotaExceededException.DefaultRetryAfter, e.RetryAfter);

            await h.Runtime.RunAsync(new RunRequest { UntilIdle = true }).WaitAsync(TimeSpan.FromSeconds(60));
            Assert.All(await h.Store.ListJobsAsync(new JobQuery { Tenant = "acme" }), j => Assert.Equal(JobStatus.Completed, j.Status));
            outcomes = await Task.WhenAll(Enumerable.Range(0, 30).Select(_ => Task.Run(() => SubmitAsync(h, wf))));
            Assert.Equal(3, outcomes.Count(ok => ok));
        }
    }

    [Fact]
    public async Task ShadowJobs_QueuedOrRunning_AreNeverCounted_ByEitherQuota()
    {
        var time = new FakeTimeProvider(Start);
        var (h, wf) = await ProjectAsync("concurrent_jobs: 1, jobs_per_minute: 2", time);
        await using (h)
        {
            var first = await h.Runtime.SubmitAsync(wf, null, new SubmitOptions { Tenant = "acme" });
            var shadows = new List<JobId>();
            for (var i = 0; i < 3; i++) shadows.Add((await h.Runtime.SubmitAsync(wf, null, new SubmitOptions { Tenant = "acme", ShadowOf = first.JobId })).JobId);
            // One shadow job running (its step leased to a worker), two queued.
            Assert.Single(await h.Store.ClaimAsync(new Ordo.Queue.ClaimRequest { Owner = "elsewhere", MaxItems = 1, LeaseDuration = TimeSpan.FromMinutes(5), Now = time.GetUtcNow(), RootJobId = shadows[0] }));
            Assert.Equal(JobStatus.Running, (await h.Store.GetJobAsync(shadows[0]))!.Status);

            var e = await Assert.ThrowsAsync<QuotaExceededException>(() => h.Runtime.SubmitAsync(wf, null, new SubmitOptions { Tenant = "acme" }));
            Assert.Equal(("concurrent_jobs", 1), (e.Quota, e.Current));
            await h.Runtime.CancelAsync(first.JobId, "make room", "ops");
            var second = await h.Runtime.SubmitAsync(wf, null, new SubmitOptions { Tenant = "acme" });
            await h.Runtime.CancelAsync(second.JobId, "make room", "ops");

            // Two production jobs and three shadow jobs in this minute: the next production job is over jobs_per_minute with 2.
            e = await Assert.ThrowsAsync<QuotaExceededException>(() => h.Runtime.SubmitAsync(wf, null, new SubmitOptions { Tenant = "acme" }));
            Assert.Equal(("jobs_per_minute", 2), (e.Quota, e.Current));
        }
    }

    private static async Task<bool> SubmitAsync(GovernanceHarness h, Ordo.Workflows.WorkflowDefinition wf)
    {
        try
        {
            await h.Runtime.SubmitAsync(wf, null, new SubmitOptions { Tenant = "acme" });
            return true;
        }
        catch (QuotaExceededException)
        {
            return false;
        }
    }
}
