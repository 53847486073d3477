using System.Text.Json;
using Ordo.Engine;
using Ordo.Events;
using Ordo.State;
using Ordo.Storage;

namespace Ordo.Tests.Governance;

/// <summary>
/// A <c>require_approval</c> policy at every point (step, tool_call, artifact, job_complete), reached at top level,
/// inside a parallel branch and inside a child job: the job waiting for it is <c>waiting_approval</c>, nothing that the
/// approval guards runs before it is granted, and approving lets the job complete with every guarded thing done once;
/// denying fails it.
/// </summary>
public sealed class PolicyPointApprovalTests
{
    public static TheoryData<string, string> PointsAndPlaces()
    {
        var data = new TheoryData<string, string>();
        foreach (var point in new[] { "step", "tool_call", "artifact", "job_complete" })
        {
            foreach (var place in new[] { "top", "branch", "child" })
            {
                data.Add(point, place);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(PointsAndPlaces))]
    public async Task RequireApproval_PausesTheJob_ThenApprovingCompletesIt_WithEveryGuardedThingDoneOnce(string point, string place)
    {
        var calls = 0;
        await using var h = Project(point, place, () => Interlocked.Increment(ref calls));
        var root = await h.RunAsync(await h.LoadAsync(), submitter: "alice");
        var waiting = await WaitingJobAsync(h, root, place);

        Assert.Equal(JobStatus.WaitingApproval, waiting.Status);
        var approval = Assert.Single(waiting.Approvals.Values, a => a.IsPending);
        Assert.Equal(point == "step" ? "step" : point, approval.Kind);
        AssertNothingGuardedRan(point, waiting, calls);
        if (place == "child")
        {
            Assert.NotEqual(JobStatus.Completed, (await h.Runtime.GetStateAsync(root.JobId))!.Status);
        }

        var decided = await h.Runtime.DecideAsync(waiting.JobId, approval.Id, "bob", approve: true, "checked");
        Assert.Equal("approved", decided.Status);
        var done = await h.ContinueAsync(root.JobId);

        Assert.Equal(JobStatus.Completed, done.Status);
        Assert.Equal(1, calls);
        var job = (await h.Runtime.GetStateAsync(waiting.JobId))!;
        Assert.Equal(JobStatus.Completed, job.Status);
        Assert.Equal("verified", job.Artifacts["res"].Latest.Status);
        var events = await h.EventsAsync(waiting.JobId);
        Assert.Single(events, e => e.Type == EventTypes.ToolCallSucceeded);
        Assert.Single(events, e => e.Type == EventTypes.JobCompleted);
        Assert.Equal(1, events.Count(e => e.Type == EventTypes.StepSucceeded && e.StepId == "finish"));
        await AssertChainIntactAsync(h, waiting.JobId);
    }

    [Theory]
    [MemberData(nameof(PointsAndPlaces))]
    public async Task RequireApproval_Denied_FailsTheJob_AndTheGuardedThingNeverHappens(string point, string place)
    {
        var calls = 0;
        await using var h = Project(point, place, () => Interlocked.Increment(ref calls));
        var root = await h.RunAsync(await h.LoadAsync(), submitter: "alice");
        var waiting = await WaitingJobAsync(h, root, place);
        var approval = Assert.Single(waiting.Approvals.Values, a => a.IsPending);

        await h.Runtime.DecideAsync(waiting.JobId, approval.Id, "bob", approve: false, "not this one");
        var done = await h.ContinueAsync(root.JobId);

        Assert.Equal(JobStatus.Failed, done.Status);
        Assert.Equal(JobStatus.Failed, (await h.Runtime.GetStateAsync(waiting.JobId))!.Status);
        Assert.Contains("denied by bob", (await h.Runtime.GetStateAsync(waiting.JobId))!.Reason);
        Assert.Equal(point == "job_complete" ? 1 : 0, calls);
        Assert.DoesNotContain(await h.EventsAsync(waiting.JobId), e => e.Type == EventTypes.StepSucceeded && e.StepId == "finish" && point != "job_complete");
    }

    [Fact]
    public async Task WhenTheJobEnds_ApprovalsStillPendingAreCancelled_AndCannotBeDecided()
    {
        await using var h = new GovernanceHarness();
        h.Write("ordo.yaml", "tenants:\n  default: { roles: { bob: [approver] } }\n");
        h.Write("workflow.yaml", """
            ordo: 1
            workflow: two-gates
            version: 1
            steps:
              - { id: fan, parallel: [left, right], join: done }
              - { id: left, approval: { role: approver } }
              - { id: right, approval: { role: approver } }
              - { id: done, transform: { set: { done: true } } }
            """);
        var state = await h.RunAsync(await h.LoadAsync());
        Assert.Equal(JobStatus.WaitingApproval, state.Status);
        var pending = state.Approvals.Values.Where(a => a.IsPending).OrderBy(a => a.Id, StringComparer.Ordinal).ToList();
        Assert.Equal(2, pending.Count);

        await h.Runtime.DecideAsync(state.JobId, pending[0].Id, "bob", approve: false, "no");
        var ended = (await h.Runtime.GetStateAsync(state.JobId))!;
        Assert.Equal(JobStatus.Failed, ended.Status);
        Assert.Equal("cancelled", ended.Approvals[pending[1].Id].Status);
        Assert.False(ended.HasPendingApprovals);
        await Assert.ThrowsAsync<ApprovalException>(() => h.Runtime.DecideAsync(state.JobId, pending[1].Id, "bob", approve: true, null));
    }

    [Fact]
    public async Task ArtifactHeldForApproval_RoutesOnTheApprovedValue_WhenTheStepEndsTheJob_ItCompletesOnlyThen()
    {
        await using var h = new GovernanceHarness();
        h.Write("ordo.yaml", "policies: [policies.yaml]\ntenants:\n  default: { roles: { bob: [approver] } }\n");
        h.Write("policies.yaml", Policy("artifact", "artifact.name == 'res' && artifact.value.x > 5"));
        h.Write("workflow.yaml", """
            ordo: 1
            workflow: held
            version: 1
            steps:
              - id: make
                transform: { set: { res: "${ ({ x: input.x }) }" } }
                next:
                  - { when: "artifacts.res.x > 100", to: big }
              - { id: big, transform: { set: { kind: "big" } } }
            """);
        var wf = await h.LoadAsync();

        // The last step's artifact needs approval: the job waits instead of completing with a quarantined value.
        var small = await h.RunAsync(wf, new { x = 10 });
        Assert.Equal(JobStatus.WaitingApproval, small.Status);
        Assert.Equal("quarantined", small.Artifacts["res"].Latest.Status);
        var held = (await h.EventsAsync(small.JobId)).Single(e => e.Type == EventTypes.StepSucceeded);
        Assert.Equal(["make#1.a.res"], held.GetPayload<StepSucceededPayload>().HeldBy);
        var outcome = await h.Runtime.DecideAsync(small.JobId, null, "bob", true, null);
        Assert.Equal(JobStatus.Completed, outcome.JobStatus);

        // The route is chosen once approved, on the verified value: here it leads on to 'big'.
        var large = await h.RunAsync(wf, new { x = 500 });
        Assert.Equal(JobStatus.WaitingApproval, large.Status);
        Assert.False(large.Steps.ContainsKey("big"));
        await h.Runtime.DecideAsync(large.JobId, null, "bob", true, null);
        var done = await h.ContinueAsync(large.JobId);
        Assert.Equal(JobStatus.Completed, done.Status);
        Assert.Equal("big", done.Artifacts["kind"].Latest.Value.GetString());
    }

    [Fact]
    public async Task ArtifactHeldForApproval_InsideSupervise_PausesTheRound_AndTheSupervisorSeesTheApprovedResult()
    {
        await using var h = new GovernanceHarness();
        h.Write("ordo.yaml", "policies: [policies.yaml]\ntenants:\n  default: { roles: { bob: [approver] } }\n");
        h.Write("policies.yaml", Policy("artifact", "artifact.name == 'draft'"));
        h.Write("workflow.yaml", """
            ordo: 1
            workflow: sup
            version: 1
            agents:
              lead:   { kind: code, type: T.Lead }
              writer: { kind: code, type: T.Write, output: draft }
            steps:
              - { id: team, supervise: { agent: lead, workers: [writer], max_rounds: 4 } }
            """);
        var seen = new List<string>();
        h.AddCodeAgent("T.Lead", (ctx, _) =>
        {
            var results = ctx.Input.GetProperty("results");
            lock (seen) seen.AddRange(results.EnumerateArray().Select(r => r.GetProperty("verdict").GetString()!));
            return Task.FromResult(Json.Of(results.GetArrayLength() == 0 ? new { next = "writer", input = new { } } : (object)new { next = "done" }));
        });
        var writes = 0;
        h.AddCodeAgent("T.Write", (_, _) =>
        {
            Interlocked.Increment(ref writes);
            return Task.FromResult(Json.Of(new { text = "hello" }));
        });

        var state = await h.RunAsync(await h.LoadAsync());
        Assert.Equal(JobStatus.WaitingApproval, state.Status);
        Assert.Equal("artifact", Assert.Single(state.Approvals.Values).Kind);
        Assert.Equal("blocked", state.Steps["team"].Status);

        await h.Runtime.DecideAsync(state.JobId, null, "bob", true, null);
        var done = await h.ContinueAsync(state.JobId);
        Assert.Equal(JobStatus.Completed, done.Status);
        Assert.Equal(1, writes);
        Assert.Equal(["approved"], seen);
        Assert.Equal("hello", done.Steps["team"].Output!.Value[0].GetProperty("output").GetProperty("text").GetString());
    }

    private static GovernanceHarness Project(string point, string place, Action onCall)
    {
        var h = new GovernanceHarness();
        h.Write("ordo.yaml", """
            tools: [tools.yaml]
            policies: [policies.yaml]
            tenants:
              default: { roles: { bob: [approver] } }
            """);
        h.Write("tools.yaml", "tools:\n  t.echo: { kind: code, effect: write }\n");
        h.AddCodeTool("t.echo", inv =>
        {
            onCall();
            return inv.Args;
        });
        h.Write("policies.yaml", Policy(point, point switch
        {
            "step" => "step.id == 'act'",
            "tool_call" => "tool.name == 't.echo'",
            "artifact" => "artifact.name == 'res'",
            // Only the job that does the work asks, not the parent of a child job.
            _ => "artifacts.done === true",
        }));
        const string Work = """
              - { id: prepare, transform: { set: { res: "${ ({ x: 10 }) }" } }, next: act }
              - { id: act, tool: t.echo, args: { x: "${ artifacts.res.x }" }, next: finish }
              - { id: finish, transform: { set: { done: true } } }

            """;
        switch (place)
        {
            case "top":
                h.Write("workflow.yaml", "ordo: 1\nworkflow: guarded\nversion: 1\nsteps:\n" + Work);
                break;
            case "branch":
                h.Write("workflow.yaml", "ordo: 1\nworkflow: guarded\nversion: 1\nsteps:\n"
                    + "  - { id: fan, parallel: [prepare, side], join: joined }\n"
                    + Work
                    + "  - { id: side, transform: { set: { side: 1 } } }\n"
                    + "  - { id: joined, transform: { set: { joined: true } } }\n");
                break;
            default:
                h.Write("child.yaml", "ordo: 1\nworkflow: child\nversion: 1\nsteps:\n" + Work);
                h.Write("workflow.yaml", "ordo: 1\nworkflow: guarded\nversion: 1\nsteps:\n"
                    + "  - { id: sub, workflow: child@1, next: after }\n"
                    + "  - { id: after, transform: { set: { after: true } } }\n");
                break;
        }

        return h;
    }

    private static string Policy(string point, string when) => $$"""
        policy: guard
        version: 2
        rules:
          - id: ask
            on: {{point}}
            when: "{{when}}"
            effect: require_approval
            approval: { role: approver }
            reason: a person looks first
        """;

    /// <summary>The job that waits: the root, or its child job for the child placement.</summary>
    private static async Task<JobState> WaitingJobAsync(GovernanceHarness h, JobState root, string place)
    {
        if (place != "child") return root;
        var children = await h.Store.ListJobsAsync(new JobQuery { ParentJobId = root.JobId });
        return (await h.Runtime.GetStateAsync(Assert.Single(children).JobId))!;
    }

    private static void AssertNothingGuardedRan(string point, JobState waiting, int calls)
    {
        switch (point)
        {
            case "step":
            case "tool_call":
                Assert.Equal(0, calls);
                break;
            case "artifact":
                Assert.Equal("quarantined", waiting.Artifacts["res"].Latest.Status);
                Assert.Equal(0, calls);
                Assert.DoesNotContain(waiting.Steps.Values, st => st.Id == "act");
                break;
            default:
                Assert.Equal(1, calls);
                Assert.Equal("succeeded", Assert.Single(waiting.Steps.Values, st => st.Id == "finish").Status);
                break;
        }
    }

    private static async Task AssertChainIntactAsync(GovernanceHarness h, JobId job)
    {
        var events = await h.EventsAsync(job);
        var rebuilt = JobStateReducer.Apply(JobStateReducer.Start(events[0]), events.Skip(1));
        Assert.Equal(JobStatus.Completed, rebuilt.Status);
        Assert.True((await AuditVerifier.VerifyAsync(h.Store, job)).Intact);
    }
}
