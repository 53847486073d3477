using System.Globalization;
using Microsoft.Extensions.Time.Testing;
using Ordo.Events;
using Ordo.Releases;
using Ordo.State;
using Ordo.Stats;
using static Ordo.Storage.Conformance.StoreFixtures;

namespace Ordo.Storage.Conformance;

/// <summary>Release records: one per workflow, kind and version, the first write winning; a canary judged on the figures of ended jobs.</summary>
public abstract partial class StoreConformanceTests
{
    [Fact]
    public async Task ReleaseRecords_FirstWriteWins_AndAreListedPerWorkflow()
    {
        var first = new ReleaseRecord("triage", ReleaseRecordKinds.RolledBack, 3, T0, "gate_rejection_rate 0.5 > 0.2", """{"jobs":10}""");
        var again = first with { At = T0.AddMinutes(1), Reason = "another judge" };
        var other = new ReleaseRecord("billing", ReleaseRecordKinds.RolledBack, 2, T0.AddMinutes(2), "failure_rate 0.3 > 0.2", """{"jobs":20}""");

        Assert.True(await Store.AddReleaseRecordAsync(first));
        Assert.False(await Store.AddReleaseRecordAsync(again));
        Assert.True(await Store.AddReleaseRecordAsync(other));

        var triage = Assert.Single(await Store.ListReleaseRecordsAsync("triage"));
        Assert.Equal(first, triage);
        Assert.Equal(["triage", "billing"], (await Store.ListReleaseRecordsAsync()).Select(r => r.Workflow));
        Assert.Empty(await Store.ListReleaseRecordsAsync("nothing"));
    }

    /// <summary>Submits a job of <c>flow@version</c>; with <paramref name="cost"/>, ends it (or leaves it running) after one model call of that cost.</summary>
    private async Task FlowJobAsync(int version, int n, decimal? cost, JobStatus status, bool rejected = false)
    {
        var id = JobId.New(T0.AddMilliseconds(version * 100 + n));
        await Store.SubmitAsync(Job(id, T0, definitionHash: $"sha256:flow{version}") with { Workflow = "flow", Version = version });
        if (cost is not { } c) return;
        var at = T0.AddSeconds(1);
        List<NewEvent> events = [ModelCall("s1", at, 100, 10, c), AgentSucceeded("s1", at)];
        if (rejected) events.Add(EventFactory.Step(EventTypes.ArtifactRejected, new StepRef("s1", 1, 1), new ArtifactVerdictPayload("label", 1, "rejected", "gate", null), at));
        if (status == JobStatus.Completed) events.Add(EventFactory.Job(EventTypes.JobCompleted, new JobCompletedPayload(1000), at));
        if (status == JobStatus.Failed) events.Add(EventFactory.Job(EventTypes.JobFailed, new JobFailedPayload("bad", "s1", "gate_rejected"), at));
        await EndAsync(id, events, status);
    }

    [Fact]
    public async Task Canary_IsJudgedOnTheFiguresOfEndedJobs_OfItsOwnVersionAndOfTheStableOne()
    {
        // Stable (1): three jobs ended at 0.01 each, three still queued. Canary (2): three ended at 0.01 each (one of
        // them failed with a rejected artifact), one queued, one running that has already spent 0.05.
        for (var i = 0; i < 3; i++) await FlowJobAsync(1, i, 0.01m, JobStatus.Completed);
        for (var i = 3; i < 6; i++) await FlowJobAsync(1, i, null, JobStatus.Queued);
        await FlowJobAsync(2, 0, 0.01m, JobStatus.Completed);
        await FlowJobAsync(2, 1, 0.01m, JobStatus.Completed);
        await FlowJobAsync(2, 2, 0.01m, JobStatus.Failed, rejected: true);
        await FlowJobAsync(2, 3, null, JobStatus.Queued);
        await FlowJobAsync(2, 4, 0.05m, JobStatus.Running);

        // Counted over every job, the cost per job would be 0.07 / 5 against 0.03 / 6 (2.8 times), the rejections 1 in 5.
        var release = new ReleaseDefinition
        {
            Workflow = "flow", Stable = 1,
            Canary = new CanaryDefinition(2, 0.5, MinJobs: 3, MaxFailureRate: null, MaxGateRejectionRate: 0.5, MaxCostPerJobRatio: 1.5),
        };
        var time = new FakeTimeProvider(T0.AddMinutes(1));
        var state = await ReleaseRouter.JudgeCanaryAsync(Store, release, 1, time);

        Assert.NotNull(state);
        Assert.Equal((5, 3), (state.Jobs, state.Finished));
        Assert.Equal(1 / 3d, state.FailureRate!.Value, 6);
        Assert.Equal(1 / 3d, state.GateRejectionRate!.Value, 6);
        Assert.Equal(1.0, state.CostPerJobRatio!.Value, 6);
        Assert.False(state.RolledBack);
        Assert.Empty(await Store.ListReleaseRecordsAsync("flow"));

        // min_jobs counts ended canary jobs: five jobs, three ended, is not yet four.
        var stricter = release with { Canary = release.Canary! with { MinJobs = 4, MaxGateRejectionRate = 0.1 } };
        Assert.False((await ReleaseRouter.JudgeCanaryAsync(Store, stricter, 1, time))!.RolledBack);

        // Once judged on ended jobs, a bound passed rolls it back, with the figures of ended jobs in the record.
        var judged = await ReleaseRouter.JudgeCanaryAsync(Store, release with { Canary = release.Canary! with { MaxGateRejectionRate = 0.3 } }, 1, time);
        Assert.True(judged!.RolledBack);
        Assert.Equal("gate_rejection_rate 0.333 is over its bound 0.3", judged.Reason);
        Assert.Contains("\"finished\":3", Assert.Single(await Store.ListReleaseRecordsAsync("flow")).Figures, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stats_EndedOnly_CountsTheEndedJobsAndTheirAgents()
    {
        await FlowJobAsync(1, 0, 0.01m, JobStatus.Completed);
        await FlowJobAsync(1, 1, 0.02m, JobStatus.Failed, rejected: true);
        await FlowJobAsync(1, 2, 0.05m, JobStatus.Running);
        await FlowJobAsync(1, 3, null, JobStatus.Queued);

        var ended = await Store.ReadStatsAsync(new StatsQuery { Since = T0, Workflow = "flow", EndedOnly = true });
        var all = await Store.ReadStatsAsync(new StatsQuery { Since = T0, Workflow = "flow" });

        var v = Assert.Single(ended.Versions);
        Assert.Equal((2, 1, 1, 0, 0.03m, 1), (v.Jobs, v.Completed, v.Failed, v.Cancelled, v.Cost, v.JobsWithRejections));
        Assert.Equal((2L, 0.03m), (Assert.Single(ended.Agents).Calls, Assert.Single(ended.Agents).Cost));
        Assert.Equal((4, 0.08m), (Assert.Single(all.Versions).Jobs, Assert.Single(all.Versions).Cost));
        Assert.Equal(3L, Assert.Single(all.Agents).Calls);
    }

    [Fact]
    public async Task Stats_Costs_AreGivenWithoutTrailingZeros_TheSameOnEveryStore()
    {
        // 0.0120 twice: a numeric sum keeps four decimal places (0.0240) unless the store normalizes it.
        await FlowJobAsync(1, 0, 0.0120m, JobStatus.Completed);
        await FlowJobAsync(1, 1, 0.0120m, JobStatus.Completed);

        var data = await Store.ReadStatsAsync(new StatsQuery { Since = T0 });

        Assert.Equal("0.024", Assert.Single(data.Versions).Cost.ToString(CultureInfo.InvariantCulture));
        Assert.Equal("0.024", Assert.Single(data.Agents).Cost.ToString(CultureInfo.InvariantCulture));
    }
}
