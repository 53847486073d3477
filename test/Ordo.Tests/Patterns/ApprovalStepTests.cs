using System.Text.Json;
using Microsoft.Extensions.Time.Testing;
using Ordo.Engine;
using Ordo.Events;
using Ordo.State;
using static Ordo.Tests.Patterns.PatternHarness;

namespace Ordo.Tests.Patterns;

/// <summary><c>approval</c> steps run from YAML: the two-person rule, the submitter's exclusion, denials and expiry (on a fake clock).</summary>
public sealed class ApprovalStepTests
{
    private const string Approval = "approve#1";

    private static string Workflow(string approval = "{ role: approver, count: 2, show: [\"${ steps.prepare.output }\"] }") => $$"""
        ordo: 1
        workflow: payout
        version: 1
        agents:
          prep:      { kind: code, type: T.Prep }
          poster:    { kind: code, type: T.Post }
          escalator: { kind: code, type: T.Escalate }
        steps:
          - { id: prepare, agent: prep, next: approve }
          - id: approve
            approval: {{approval}}
            next: post
          - { id: post, agent: poster, input: { approval: "${ steps.approve.output }" } }
          - { id: escalate, agent: escalator }
        """;

    private static PatternHarness Harness(TimeProvider? time = null)
    {
        var h = new PatternHarness(NewOptions(workers: 2, time));
        h.Agent("T.Prep", "{\"amount\": 1200}");
        h.Agent("T.Post", input => input);
        h.Agent("T.Escalate", "{\"escalated\": true}");
        return h;
    }

    [Fact]
    public async Task TwoPersonRule_OneApproverTwiceIsRefusedAndLeavesItPending_ASecondApproverLetsTheJobContinue()
    {
        await using var h = Harness();
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Workflow()));

        Assert.Equal(JobStatus.WaitingApproval, state.Status);
        var pending = state.Approvals[Approval];
        Assert.Equal(("pending", "approver", 2, "approve"), (pending.Status, pending.Role, pending.Count, pending.StepId));
        var requested = (await h.EventsAsync(state.JobId)).Single(e => e.Type == EventTypes.ApprovalRequested).GetPayload<ApprovalRequestedPayload>();
        Assert.Equal("""[{"amount":1200}]""", Raw(requested.Show));

        var first = await h.Runtime.DecideAsync(state.JobId, Approval, "bob", approve: true, "looks right");
        Assert.Equal(("pending", 1, JobStatus.WaitingApproval), (first.Status, first.Remaining, first.JobStatus));

        var again = await Assert.ThrowsAsync<ApprovalException>(() => h.Runtime.DecideAsync(state.JobId, Approval, "bob", approve: true, "me again"));
        Assert.Contains("bob has already approved approve#1; it needs 2 distinct approvers", again.Message);
        state = await h.ContinueAsync(state.JobId);
        Assert.Equal(JobStatus.WaitingApproval, state.Status);
        Assert.Equal("pending", state.Approvals[Approval].Status);
        Assert.Equal(["bob"], state.Approvals[Approval].Approvers);
        Assert.Equal(0, h.Calls("T.Post"));

        var second = await h.Runtime.DecideAsync(state.JobId, Approval, "carol", approve: true, null);
        Assert.Equal(("approved", 0), (second.Status, second.Remaining));
        state = await h.ContinueAsync(state.JobId);

        Assert.Equal(JobStatus.Completed, state.Status);
        var output = state.Steps["approve"].Output!.Value;
        Assert.Equal("""["bob","carol"]""", Raw(output.GetProperty("approvers")));
        Assert.True(output.GetProperty("approved").GetBoolean());
        Assert.Equal(["bob", "carol"], output.GetProperty("decisions").EnumerateArray().Select(d => d.GetProperty("by").GetString()));
        Assert.Equal(1, h.Calls("T.Post"));
        Assert.Equal("""["bob","carol"]""", Raw(h.Inputs("T.Post").Single().GetProperty("approval").GetProperty("approvers")));

        var events = await h.EventsAsync(state.JobId);
        var decided = events.Where(e => e.Type == EventTypes.ApprovalDecided).Select(e => e.GetPayload<ApprovalDecidedPayload>()).ToList();
        Assert.Equal([("bob", "approve", "pending"), ("carol", "approve", "approved")], decided.Select(d => (d.By, d.Decision, d.Status)));
        Assert.Contains(events, e => e.Type == EventTypes.StepBlocked && e.StepId == "approve" && e.GetPayload<StepBlockedPayload>().ApprovalId == Approval);
        Assert.Contains(events, e => e.Type == EventTypes.StepScheduled && e.StepId == "approve" && e.GetPayload<StepScheduledPayload>().Reason == "approved");
        Assert.Single(events, e => e.Type == EventTypes.StepSucceeded && e.StepId == "approve");
    }

    [Theory]
    [InlineData("Bob", "bob")]
    [InlineData("bob", " BOB ")]
    [InlineData("bob", "ｂｏｂ")]
    [InlineData("bob", "b\u200dob")]
    [InlineData("bob", "bob\u202e")]
    [InlineData("bob", "bob\U000E0001")]
    [InlineData("bob", "bob\ufe0f")]
    [InlineData("bob", "bo\u00adb")]
    public async Task TwoPersonRule_OneApproverUnderTwoSpellings_IsOnePerson(string first, string second)
    {
        await using var h = Harness();
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Workflow()));
        await h.Runtime.DecideAsync(state.JobId, Approval, first, approve: true, null);
        var again = await Assert.ThrowsAsync<ApprovalException>(() => h.Runtime.DecideAsync(state.JobId, Approval, second, approve: true, null));
        Assert.Contains("bob has already approved", again.Message);
        state = await h.ContinueAsync(state.JobId);
        Assert.Equal(["bob"], state.Approvals[Approval].Approvers);
        Assert.Equal(JobStatus.WaitingApproval, state.Status);
    }

    [Theory]
    [InlineData("Alice")]
    [InlineData("alice ")]
    [InlineData("ＡＬＩＣＥ")]
    [InlineData("ａｌｉｃｅ")]
    [InlineData("alice\u200b")]
    [InlineData("\u200ealice")]
    [InlineData("alice\u2060")]
    public async Task TheSubmitter_UnderAnotherSpelling_CannotDecide(string spelling)
    {
        await using var h = Harness();
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Workflow("{ role: approver }")), submitter: "alice");
        await Assert.ThrowsAsync<ApprovalException>(() => h.Runtime.DecideAsync(state.JobId, Approval, spelling, approve: true, null));
        Assert.DoesNotContain(await h.EventsAsync(state.JobId), e => e.Type == EventTypes.ApprovalDecided);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("ann\u001b[31m")]
    [InlineData("ann\rbob")]
    public async Task AnIdentityThatIsEmptyOrHoldsControlCharacters_IsRefused(string escaped)
    {
        var identity = System.Text.RegularExpressions.Regex.Unescape(escaped);
        await using var h = Harness();
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Workflow()));
        await Assert.ThrowsAnyAsync<OrdoRefusedException>(() => h.Runtime.DecideAsync(state.JobId, Approval, identity, approve: true, null));
        Assert.DoesNotContain(await h.EventsAsync(state.JobId), e => e.Type == EventTypes.ApprovalDecided);
    }

    [Fact]
    public async Task TheSubmitter_CannotDecide_AndNothingIsRecorded()
    {
        await using var h = Harness();
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Workflow("{ role: approver }")), submitter: "alice");

        var refused = await Assert.ThrowsAsync<ApprovalException>(() => h.Runtime.DecideAsync(state.JobId, null, "alice", approve: true, "mine"));
        Assert.Contains("alice submitted job", refused.Message);
        Assert.Contains("may not approve or deny its own approvals", refused.Message);
        await Assert.ThrowsAsync<ApprovalException>(() => h.Runtime.DecideAsync(state.JobId, null, "alice", approve: false, "mine"));

        state = (await h.Runtime.GetStateAsync(state.JobId))!;
        Assert.Equal(JobStatus.WaitingApproval, state.Status);
        Assert.Equal("pending", state.Approvals[Approval].Status);
        Assert.DoesNotContain(await h.EventsAsync(state.JobId), e => e.Type == EventTypes.ApprovalDecided);

        // Somebody else may.
        Assert.Equal("approved", (await h.Runtime.DecideAsync(state.JobId, null, "bob", approve: true, null)).Status);
        Assert.Equal(JobStatus.Completed, (await h.ContinueAsync(state.JobId)).Status);
    }

    [Fact]
    public async Task ADeny_EndsTheJobFailed_WithTheReason_AndTheStepAfterNeverRuns()
    {
        await using var h = Harness();
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Workflow()));
        await h.Runtime.DecideAsync(state.JobId, Approval, "bob", approve: true, null);

        var denied = await h.Runtime.DecideAsync(state.JobId, Approval, "carol", approve: false, "amount too high");
        Assert.Equal(("denied", JobStatus.Failed), (denied.Status, denied.JobStatus));
        state = await h.ContinueAsync(state.JobId);

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains("denied by carol: amount too high", state.Reason);
        Assert.Equal(0, h.Calls("T.Post"));
        var failed = (await h.EventsAsync(state.JobId)).Single(e => e.Type == EventTypes.JobFailed).GetPayload<JobFailedPayload>();
        Assert.Equal(("approval_denied", "approve"), (failed.Error, failed.Step));
        var late = await Assert.ThrowsAsync<ApprovalException>(() => h.Runtime.DecideAsync(state.JobId, Approval, "dave", approve: true, null));
        Assert.Contains("already denied", late.Message);
    }

    [Fact]
    public async Task Expiry_WithOnExpireFail_FailsTheJob_OnlyOnceTheFakeClockPassesTheExpiry()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var h = Harness(time);
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Workflow("{ role: approver, count: 2, expires: 1h, on_expire: fail }")));
        Assert.Equal(JobStatus.WaitingApproval, state.Status);
        Assert.Equal(time.GetUtcNow().AddHours(1), state.Approvals[Approval].ExpiresAt);
        await h.Runtime.DecideAsync(state.JobId, Approval, "bob", approve: true, null);

        time.Advance(TimeSpan.FromMinutes(59));
        Assert.Equal(JobStatus.WaitingApproval, (await h.ContinueAsync(state.JobId)).Status);
        time.Advance(TimeSpan.FromMinutes(2));
        state = await h.ContinueAsync(state.JobId);

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains("approval approve#1", state.Reason);
        Assert.Contains("expired", state.Reason);
        Assert.Equal("expired", state.Approvals[Approval].Status);
        Assert.Equal(0, h.Calls("T.Post"));
        var events = await h.EventsAsync(state.JobId);
        var expiry = events.Where(e => e.Type == EventTypes.ApprovalDecided).Select(e => e.GetPayload<ApprovalDecidedPayload>()).Last();
        Assert.Equal(("expire", "system", "expired"), (expiry.Decision, expiry.By, expiry.Status));
        Assert.Equal("approval_expired", events.Single(e => e.Type == EventTypes.JobFailed).GetPayload<JobFailedPayload>().Error);
    }

    [Fact]
    public async Task Expiry_WithOnExpireApprove_ContinuesTheJob()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var h = Harness(time);
        var wf = await h.LoadAsync("wf.yaml", Workflow("{ role: approver, expires: 30m, on_expire: approve }")
            .Replace("next: approve", "next: sign_off", StringComparison.Ordinal).Replace("id: approve", "id: sign_off", StringComparison.Ordinal)
            .Replace("steps.approve.", "steps.sign_off.", StringComparison.Ordinal));
        var state = await h.RunAsync(wf);
        Assert.Equal(JobStatus.WaitingApproval, state.Status);

        time.Advance(TimeSpan.FromMinutes(31));
        state = await h.ContinueAsync(state.JobId);

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("approved", state.Approvals["sign_off#1"].Status);
        Assert.Equal(1, h.Calls("T.Post"));
        Assert.Equal(0, h.Calls("T.Escalate"));
        var output = state.Steps["sign_off"].Output!.Value;
        Assert.Equal("[]", Raw(output.GetProperty("approvers")));
        Assert.Equal("expire", output.GetProperty("decisions")[0].GetProperty("decision").GetString());
    }

    [Fact]
    public async Task Expiry_WithOnExpireApprove_OnAStepNamedApprove_Loads()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var h = Harness(time);
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Workflow("{ role: approver, expires: 30m, on_expire: approve }")));
        time.Advance(TimeSpan.FromMinutes(31));
        state = await h.ContinueAsync(state.JobId);

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("approved", state.Approvals[Approval].Status);
    }

    [Fact]
    public async Task Expiry_WithOnExpireAStep_RoutesThere_AndTheApprovedPathNeverRuns()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var h = Harness(time);
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Workflow("{ role: approver, expires: 2h, on_expire: escalate }")));

        time.Advance(TimeSpan.FromHours(2));
        state = await h.ContinueAsync(state.JobId);

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("expired", state.Approvals[Approval].Status);
        Assert.Equal(1, h.Calls("T.Escalate"));
        Assert.Equal(0, h.Calls("T.Post"));
        var events = await h.EventsAsync(state.JobId);
        var scheduled = events.Single(e => e.Type == EventTypes.StepScheduled && e.StepId == "escalate").GetPayload<StepScheduledPayload>();
        Assert.Equal(("expired", "approve"), (scheduled.Reason, scheduled.From));
        Assert.Equal(EventTypes.JobCompleted, events[^1].Type);
    }

    [Fact]
    public async Task ADecisionAfterTheExpiry_IsRefused_AndTheExpiryIsAppliedInstead()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var h = Harness(time);
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Workflow("{ role: approver, expires: 10m, on_expire: fail }")));

        time.Advance(TimeSpan.FromMinutes(11));
        var late = await Assert.ThrowsAsync<ApprovalException>(() => h.Runtime.DecideAsync(state.JobId, Approval, "bob", approve: true, null));
        Assert.Contains("expired", late.Message);
        state = (await h.Runtime.GetStateAsync(state.JobId))!;
        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.DoesNotContain(state.Approvals[Approval].Decisions, d => d.By == "bob");
    }
}
