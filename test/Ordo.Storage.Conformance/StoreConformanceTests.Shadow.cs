using Ordo.State;
using static Ordo.Storage.Conformance.StoreFixtures;

namespace Ordo.Storage.Conformance;

/// <summary>Shadow jobs: never counted toward their tenant's quotas, whether just submitted, queued, running or under another shadow job.</summary>
public abstract partial class StoreConformanceTests
{
    [Fact]
    public async Task Submit_ShadowJobsQueuedOrRunning_DoNotCountTowardTheConcurrentQuota()
    {
        var quota = new TenantQuota(ConcurrentJobs: 1, JobsPerMinute: null);
        await Store.SubmitAsync(Job(JobId.New(T0), T0, tenant: "acme") with { Shadow = true });
        await Store.SubmitAsync(Job(JobId.New(T0.AddMilliseconds(1)), T0, tenant: "acme") with { Shadow = true });
        var claimed = await Store.ClaimAsync(Claim("w", T0, max: 1));
        var running = Assert.Single(claimed).JobId;
        Assert.Equal(JobStatus.Running, (await Store.GetJobAsync(running))!.Status);
        Assert.Single(await Store.ListJobsAsync(new JobQuery { Tenant = "acme", Status = JobStatus.Queued }));

        // A shadow job started under a shadow job (a sub-workflow of it) is not counted either.
        var child = JobId.New(T0.AddMilliseconds(2));
        var state = await StateAsync(Store, running);
        Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(Commit(state, [Succeeded("s1", T0)], ack: claimed[0].Lease) with
        {
            StartJobs = [Job(child, T0, tenant: "acme", root: running, parent: running) with { Shadow = true }],
        })).Outcome);

        var production = JobId.New(T0.AddMilliseconds(3));
        await Store.SubmitAsync(Job(production, T0, tenant: "acme") with { Quota = quota });
        var e = await Assert.ThrowsAsync<QuotaExceededException>(async () => await Store.SubmitAsync(Job(JobId.New(T0.AddMilliseconds(4)), T0, tenant: "acme") with { Quota = quota }));
        Assert.Equal(("concurrent_jobs", 1), (e.Quota, e.Current));

        // Shadow jobs go on being submitted past the quota: they ask nothing of it.
        await Store.SubmitAsync(Job(JobId.New(T0.AddMilliseconds(5)), T0, tenant: "acme") with { Shadow = true });
        Assert.Equal(5, (await Store.ListJobsAsync(new JobQuery { Tenant = "acme", Limit = 100 })).Count);
    }

    [Fact]
    public async Task Submit_ShadowJobsOfTheLastMinute_DoNotCountTowardTheRateQuota()
    {
        var quota = new TenantQuota(ConcurrentJobs: null, JobsPerMinute: 2);
        for (var i = 0; i < 3; i++) await Store.SubmitAsync(Job(JobId.New(T0.AddSeconds(i)), T0.AddSeconds(i), tenant: "acme") with { Shadow = true });

        await Store.SubmitAsync(Job(JobId.New(T0.AddSeconds(10)), T0.AddSeconds(10), tenant: "acme") with { Quota = quota });
        await Store.SubmitAsync(Job(JobId.New(T0.AddSeconds(20)), T0.AddSeconds(20), tenant: "acme") with { Quota = quota });
        var e = await Assert.ThrowsAsync<QuotaExceededException>(async () => await Store.SubmitAsync(Job(JobId.New(T0.AddSeconds(30)), T0.AddSeconds(30), tenant: "acme") with { Quota = quota }));
        Assert.Equal(("jobs_per_minute", 2), (e.Quota, e.Current));
        // The first production submission leaves the minute at T0 + 70 s: the shadow jobs before it do not hold it up.
        Assert.Equal(TimeSpan.FromSeconds(40), e.RetryAfter);
    }
}
