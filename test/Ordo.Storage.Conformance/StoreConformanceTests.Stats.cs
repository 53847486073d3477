using Ordo.Events;
using Ordo.State;
using Ordo.Stats;
using static Ordo.Storage.Conformance.StoreFixtures;

namespace Ordo.Storage.Conformance;

/// <summary>The summary rows of <c>ordo stats</c>: kept at each commit, summed per workflow version and per agent and prompt hash.</summary>
public abstract partial class StoreConformanceTests
{
    private static NewEvent ModelCall(string step, DateTimeOffset at, long tokensIn, long tokensOut, decimal cost, string agent = "extractor@2", string prompt = "sha256:p1")
        => EventFactory.Step(EventTypes.ModelCallSucceeded, new StepRef(step, 1, 1), new ModelCallSucceededPayload(step + ".m0", "fast", "scripted", "m", "{}", tokensIn, tokensOut, cost, 5), at, agent: agent, promptHash: prompt);

    private static NewEvent AgentSucceeded(string step, DateTimeOffset at, string agent = "extractor@2", string prompt = "sha256:p1")
        => EventFactory.Step(EventTypes.StepSucceeded, new StepRef(step, 1, 1), new StepSucceededPayload(Ordo.Json.Of(new { ok = true }), 1, null, null), at, agent: agent, promptHash: prompt);

    private static NewEvent AgentFailed(string step, DateTimeOffset at, bool willRetry, string agent = "extractor@2", string prompt = "sha256:p1")
        => EventFactory.Step(EventTypes.StepFailed, new StepRef(step, 1, 1), new StepFailedPayload("malformed_output", "bad", true, willRetry, 10, 1, null), at, agent: agent, promptHash: prompt);

    private async Task EndAsync(JobId id, IReadOnlyList<NewEvent> events, JobStatus status)
    {
        var state = await StateAsync(Store, id);
        Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(Commit(state, events, status: status))).Outcome);
    }

    [Fact]
    public async Task Stats_KeptAtEachCommit_AreSummedPerWorkflowVersionAndPerAgent()
    {
        var a = JobId.New(T0);
        var b = JobId.New(T0.AddMilliseconds(1));
        var c = JobId.New(T0.AddMilliseconds(2));
        var other = JobId.New(T0.AddMilliseconds(3));
        var old = JobId.New(T0.AddDays(-2));
        await Store.SubmitAsync(Job(a, T0, tenant: "acme"));
        await Store.SubmitAsync(Job(b, T0, tenant: "acme"));
        await Store.SubmitAsync(Job(c, T0, tenant: "acme"));
        await Store.SubmitAsync(Job(other, T0, tenant: "globex"));
        await Store.SubmitAsync(Job(old, T0.AddDays(-2), tenant: "acme"));

        // a: a retried failure, then success; two model calls; completed after 1 s, in two commits.
        var t1 = T0.AddSeconds(1);
        await EndAsync(a, [ModelCall("s1", T0, 100, 20, 0.01m), AgentFailed("s1", T0, willRetry: true)], JobStatus.Running);
        await EndAsync(a, [ModelCall("s1", t1, 100, 30, 0.02m), AgentSucceeded("s1", t1), EventFactory.Job(EventTypes.JobCompleted, new JobCompletedPayload(1000), t1)], JobStatus.Completed);
        // b: a rejected artifact and an escalation; completed after 2 s, with another prompt.
        var t2 = T0.AddSeconds(2);
        await EndAsync(b, [
            ModelCall("s1", t2, 50, 10, 0.005m, prompt: "sha256:p2"), AgentSucceeded("s1", t2, prompt: "sha256:p2"),
            EventFactory.Step(EventTypes.ArtifactRejected, new StepRef("s1", 1, 1), new ArtifactVerdictPayload("finding", 1, "rejected", "no evidence", null), t2),
            EventFactory.Step(EventTypes.Escalated, new StepRef("s1", 1, 1), new EscalatedPayload("retries exhausted", "s1#1.esc", "escalation"), t2),
            EventFactory.Job(EventTypes.JobCompleted, new JobCompletedPayload(2000), t2)], JobStatus.Completed);
        // c: failed after 3 s, its failure not retried.
        var t3 = T0.AddSeconds(3);
        await EndAsync(c, [AgentFailed("s1", t3, willRetry: false), EventFactory.Job(EventTypes.JobFailed, new JobFailedPayload("bad", "s1", "malformed_output"), t3)], JobStatus.Failed);
        await EndAsync(other, [ModelCall("s1", T0, 1000, 1000, 1m), AgentSucceeded("s1", T0)], JobStatus.Running);
        await EndAsync(old, [ModelCall("s1", T0, 1000, 1000, 1m)], JobStatus.Running);

        var data = await Store.ReadStatsAsync(new StatsQuery { Since = T0.AddHours(-1), Tenant = "acme" });

        var v = Assert.Single(data.Versions);
        Assert.Equal(("w", 1, 3, 2, 1, 0), (v.Workflow, v.Version, v.Jobs, v.Completed, v.Failed, v.Cancelled));
        Assert.Equal(310, v.Tokens);
        Assert.Equal(0.035m, v.Cost);
        Assert.Equal(1, v.Retries);
        Assert.Equal(1, v.JobsWithRejections);
        Assert.Equal(1, v.JobsWithEscalations);
        Assert.Equal([1000d, 2000d, 3000d], v.LatenciesMs.Order());
        var agents = data.Agents.OrderBy(x => x.PromptHash, StringComparer.Ordinal).ToList();
        Assert.Equal(2, agents.Count);
        Assert.Equal(new AgentTotals("w", 1, "extractor@2", "sha256:p1", 3, 2, 250, 0.03m), agents[0]);
        Assert.Equal(new AgentTotals("w", 1, "extractor@2", "sha256:p2", 1, 0, 60, 0.005m), agents[1]);

        // Every tenant: globex's running job counts as a job, not as ended; the job older than the window does not count.
        var all = Assert.Single((await Store.ReadStatsAsync(new StatsQuery { Since = T0.AddHours(-1) })).Versions);
        Assert.Equal(4, all.Jobs);
        Assert.Equal(3, all.LatenciesMs.Count);
        Assert.Empty((await Store.ReadStatsAsync(new StatsQuery { Since = T0.AddHours(-1), Workflow = "another" })).Versions);
        Assert.Equal(5, Assert.Single((await Store.ReadStatsAsync(new StatsQuery { Since = T0.AddDays(-3) })).Versions).Jobs);
    }

    [Fact]
    public async Task Stats_OfARefusedCommit_AreNotCounted()
    {
        var id = JobId.New(T0);
        await Store.SubmitAsync(Job(id, T0));
        var state = await StateAsync(Store, id);
        await Store.CommitAsync(Commit(state, [Succeeded("s1", T0)]));

        var stale = await Store.CommitAsync(Commit(state, [ModelCall("s1", T0, 500, 500, 5m), AgentFailed("s1", T0, willRetry: true)]));

        Assert.Equal(CommitOutcome.Conflict, stale.Outcome);
        var v = Assert.Single((await Store.ReadStatsAsync(new StatsQuery { Since = T0 })).Versions);
        Assert.Equal((1, 0L, 0m, 0L), (v.Jobs, v.Tokens, v.Cost, v.Retries));
        Assert.Empty((await Store.ReadStatsAsync(new StatsQuery { Since = T0 })).Agents);
    }

    [Fact]
    public async Task Stats_OfCommitsWrittenTogether_CountEachOnce_AndNothingOfTheRefusedOnes()
    {
        var id = JobId.New(T0);
        var other = JobId.New(T0.AddMilliseconds(1));
        await Store.SubmitAsync(Job(id, T0));
        await Store.SubmitAsync(Job(other, T0));
        var stale = await StateAsync(Store, id);
        Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(Commit(stale, [ModelCall("s1", T0, 10, 0, 0.001m), AgentSucceeded("s1", T0)]))).Outcome);

        // A group with a refused commit and one continuing it: only the unrelated commit counts, once.
        var refused = Commit(stale, [ModelCall("s1", T0, 500, 500, 5m), AgentFailed("s1", T0, willRetry: true)]);
        var continuing = Commit(JobStateReducer.Apply(stale, refused.Events), [ModelCall("s2", T0, 500, 500, 5m)]);
        var unrelated = Commit(await StateAsync(Store, other), [ModelCall("o1", T0, 100, 20, 0.01m), AgentFailed("o1", T0, willRetry: true)]);
        var results = await Task.WhenAll(Store.CommitInOrder([refused, continuing, unrelated]));
        Assert.Equal([CommitOutcome.Conflict, CommitOutcome.Conflict, CommitOutcome.Committed], results.Select(r => r.Outcome));

        // A group that commits as a whole: each commit counts once, the second of one job on top of the first.
        var next = await StateAsync(Store, other);
        var first = Commit(next, [ModelCall("o2", T0, 1, 1, 0.0001m), AgentSucceeded("o2", T0)]);
        var second = Commit(JobStateReducer.Apply(next, first.Events), [EventFactory.Job(EventTypes.JobCompleted, new JobCompletedPayload(500), T0.AddMilliseconds(500))], status: JobStatus.Completed);
        var third = Commit(await StateAsync(Store, id), [EventFactory.Job(EventTypes.JobCancelled, new JobCancelledPayload("enough", "tester"), T0.AddSeconds(2))], status: JobStatus.Cancelled);
        Assert.All(await Task.WhenAll(Store.CommitInOrder([first, second, third])), r => Assert.Equal(CommitOutcome.Committed, r.Outcome));

        var data = await Store.ReadStatsAsync(new StatsQuery { Since = T0 });
        var v = Assert.Single(data.Versions);
        Assert.Equal((2, 1, 0, 1), (v.Jobs, v.Completed, v.Failed, v.Cancelled));
        Assert.Equal((132L, 0.0111m, 1L), (v.Tokens, v.Cost, v.Retries));
        Assert.Equal([500d, 2000d], v.LatenciesMs.Order());
        var agent = Assert.Single(data.Agents);
        Assert.Equal(new AgentTotals("w", 1, "extractor@2", "sha256:p1", 3, 1, 132, 0.0111m), agent);
    }

    [Fact]
    public async Task Stats_OfAChildJobStartedInACommit_AreKeptUnderItsOwnWorkflow_AndFilteredByVersion()
    {
        var parent = JobId.New(T0);
        var child = JobId.New(T0.AddMilliseconds(1));
        await Store.SubmitAsync(Job(parent, T0, tenant: "acme"));
        var state = await StateAsync(Store, parent);
        var childJob = Job(child, T0, tenant: "acme", root: parent, parent: parent, definitionHash: "sha256:child") with { Workflow = "sub", Version = 4 };
        Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(Commit(state, [ModelCall("s1", T0, 7, 3, 0.5m)]) with { StartJobs = [childJob] })).Outcome);
        await EndAsync(child, [ModelCall("c1", T0, 40, 2, 0.25m, agent: "helper@1", prompt: ""), AgentSucceeded("c1", T0, agent: "helper@1", prompt: ""),
            EventFactory.Job(EventTypes.JobCompleted, new JobCompletedPayload(10), T0.AddMilliseconds(10))], JobStatus.Completed);

        var all = await Store.ReadStatsAsync(new StatsQuery { Since = T0, Tenant = "acme" });
        Assert.Equal([("sub", 4, 1, 42L, 0.25m), ("w", 1, 1, 10L, 0.5m)],
            all.Versions.OrderBy(x => x.Workflow, StringComparer.Ordinal).Select(x => (x.Workflow, x.Version, x.Jobs, x.Tokens, x.Cost)));
        var sub = await Store.ReadStatsAsync(new StatsQuery { Since = T0, Workflow = "sub", Version = 4 });
        Assert.Equal([10d], Assert.Single(sub.Versions).LatenciesMs);
        Assert.Equal(new AgentTotals("sub", 4, "helper@1", "", 1, 0, 42, 0.25m), Assert.Single(sub.Agents));
        Assert.Empty((await Store.ReadStatsAsync(new StatsQuery { Since = T0, Workflow = "sub", Version = 3 })).Versions);
        Assert.Empty((await Store.ReadStatsAsync(new StatsQuery { Since = T0, Tenant = "globex" })).Versions);
        Assert.Empty((await Store.ReadStatsAsync(new StatsQuery { Since = T0.AddSeconds(1) })).Versions);
    }
}
