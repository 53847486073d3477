using Ordo.Engine;
using Ordo.Events;
using Ordo.KillSwitches;
using Ordo.State;
using Ordo.Storage;
using Ordo.TestServers;

namespace Ordo.Tests.Governance;

/// <summary>Policies, approvals, budgets, kill switches, escalation and quotas, through real YAML workflows.</summary>
public sealed class PolicyTests
{
    private static async Task<(GovernanceHarness H, LoopbackServer Server)> PostingProjectAsync(string policies, string constraints = "", string onFailure = "", string tenants = "")
    {
        var server = await LoopbackServer.StartAsync((ctx, req) => LoopbackServer.JsonAsync(ctx, 200, """{"posted":true}"""));
        var h = new GovernanceHarness();
        h.Write("ordo.yaml", $"""
            tools: [tools.yaml]
            policies: [policies.yaml]
            {tenants}
            """);
        h.Write("policies.yaml", policies);
        h.Write("tools.yaml", $$"""
            tools:
              ledger.post:
                kind: http
                url: "{{server.Address}}post"
                effect: irreversible
                args: { type: object, required: [lines], properties: { lines: { type: array } } }
              web.search: { kind: http, method: GET, url: "{{server.Address}}search", effect: read }
            """);
        h.Write("workflow.yaml", $$"""
            ordo: 1
            workflow: posting
            version: 1
            constraints: { no_web: true {{constraints}} }
            steps:
              - { id: prepare, transform: { set: { lines: "${ input.lines }" } }, next: post }
              - { id: post, tool: ledger.post, args: { lines: "${ artifacts.lines }" } {{onFailure}} }
            """);
        return (h, server);
    }

    [Fact]
    public async Task DenyRule_FailsTheJob_WithTheRuleIdInTheReason_AndADecisionEvent()
    {
        var (h, server) = await PostingProjectAsync("""
            policy: acme-prod
            version: 7
            rules:
              - id: no-big-postings
                on: tool_call
                when: "tool.effect == 'irreversible' && args.lines.length > 2"
                effect: deny
                reason: "postings over 2 lines are not allowed"
            """);
        await using (h)
        await using (server)
        {
            var state = await h.RunAsync(await h.LoadAsync(), new { lines = new[] { 1, 2, 3 } });
            Assert.Equal(JobStatus.Failed, state.Status);
            Assert.Contains("no-big-postings", state.Reason);
            Assert.Contains("acme-prod@7", state.Reason);
            Assert.Empty(server.Requests);
            var decision = (await h.EventsAsync(state.JobId)).Single(e => e.Type == EventTypes.PolicyDecision);
            var p = decision.GetPayload<PolicyDecisionPayload>();
            Assert.Equal(("tool_call", "deny", "no-big-postings", "acme-prod@7"), (p.Point, p.Effect, p.Rule, p.Policy));
            Assert.Equal("acme-prod@7", decision.Policy);

            var small = await h.RunAsync(await h.LoadAsync(), new { lines = new[] { 1 } });
            Assert.Equal(JobStatus.Completed, small.Status);
            Assert.DoesNotContain(await h.EventsAsync(small.JobId), e => e.Type == EventTypes.PolicyDecision);
        }
    }

    [Fact]
    public async Task RequireApproval_PausesTheJob_UntilDistinctApproversAgree_ThenTheCallRunsOnce()
    {
        var (h, server) = await PostingProjectAsync("""
            policy: acme-prod
            version: 7
            rules:
              - id: postings-need-approval
                on: tool_call
                when: "tool.name == 'ledger.post'"
                effect: require_approval
                approval: { role: approver, count: 1 }
                reason: "postings are irreversible"
            """, tenants: """
            tenants:
              default: { roles: { bob: [approver], carol: [approver], dave: [viewer] } }
            """);
        await using (h)
        await using (server)
        {
            var state = await h.RunAsync(await h.LoadAsync(), new { lines = new[] { 1 } }, submitter: "alice");
            Assert.Equal(JobStatus.WaitingApproval, state.Status);
            Assert.Empty(server.Requests);
            var approval = Assert.Single(state.Approvals.Values);
            Assert.Equal(("post#1.t0", "tool_call", 2), (approval.Id, approval.Kind, approval.Count));

            var self = await Assert.ThrowsAsync<ApprovalException>(() => h.Runtime.DecideAsync(state.JobId, null, "alice", true, "mine"));
            Assert.Contains("submitted", self.Message);
            var noRole = await Assert.ThrowsAsync<ApprovalException>(() => h.Runtime.DecideAsync(state.JobId, null, "dave", true, null));
            Assert.Contains("role 'approver'", noRole.Message);

            var first = await h.Runtime.DecideAsync(state.JobId, null, "bob", true, "checked");
            Assert.Equal(("pending", 1), (first.Status, first.Remaining));
            var twice = await Assert.ThrowsAsync<ApprovalException>(() => h.Runtime.DecideAsync(state.JobId, "post#1.t0", "bob", true, "again"));
            Assert.Contains("already approved", twice.Message);
            Assert.Equal(JobStatus.WaitingApproval, (await h.Runtime.GetStateAsync(state.JobId))!.Status);

            var second = await h.Runtime.DecideAsync(state.JobId, "post#1.t0", "carol", true, "ok");
            Assert.Equal("approved", second.Status);
            var done = await h.ContinueAsync(state.JobId);
            Assert.Equal(JobStatus.Completed, done.Status);
            Assert.Single(server.Requests);
            var decisions = (await h.EventsAsync(state.JobId)).Where(e => e.Type == EventTypes.ApprovalDecided).Select(e => e.GetPayload<ApprovalDecidedPayload>()).ToList();
            Assert.Equal(["bob", "carol"], decisions.Select(d => d.By));
            Assert.Equal(["pending", "approved"], decisions.Select(d => d.Status));
        }
    }

    [Fact]
    public async Task ApprovalDenied_FailsTheJobWithTheReason()
    {
        var (h, server) = await PostingProjectAsync("""
            policy: p
            version: 1
            rules:
              - { id: ask, on: step, when: "step.id == 'post'", effect: require_approval, approval: { role: approver } }
            """);
        await using (h)
        await using (server)
        {
            var state = await h.RunAsync(await h.LoadAsync(), new { lines = new[] { 1 } });
            Assert.Equal(JobStatus.WaitingApproval, state.Status);
            Assert.Equal("post#1.step", Assert.Single(state.Approvals.Values).Id);
            var outcome = await h.Runtime.DecideAsync(state.JobId, null, "bob", false, "wrong vendor");
            Assert.Equal(JobStatus.Failed, outcome.JobStatus);
            var failed = (await h.Runtime.GetStateAsync(state.JobId))!;
            Assert.Contains("denied by bob: wrong vendor", failed.Reason);
            Assert.Empty(server.Requests);
        }
    }

    [Fact]
    public async Task ApprovalExpiry_TakesOnExpire_OnTheInjectedClock()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var h = new GovernanceHarness(options: new OrdoRuntimeOptions { Workers = 1, TimeProvider = time, PollInterval = TimeSpan.FromMilliseconds(5), KillSwitchRefresh = TimeSpan.Zero });
        h.Write("ordo.yaml", "tools: [tools.yaml]\npolicies: [policies.yaml]\n");
        h.Write("policies.yaml", "policy: p\nversion: 1\nrules:\n  - { id: ask, on: tool_call, effect: require_approval, approval: { role: approver, expires: 1h } }\n");
        h.Write("tools.yaml", "tools:\n  ledger.post: { kind: code, effect: write }\n");
        h.Write("workflow.yaml", """
            ordo: 1
            workflow: expiring
            version: 1
            steps:
              - { id: post, tool: ledger.post, args: { lines: [1] } }
            """);
        h.AddCodeTool("ledger.post", inv => inv.Args);
        var state = await h.RunAsync(await h.LoadAsync());
        Assert.Equal(JobStatus.WaitingApproval, state.Status);
        Assert.Equal(time.GetUtcNow().AddHours(1), state.Approvals.Values.Single().ExpiresAt!.Value, TimeSpan.FromSeconds(1));

        time.Advance(TimeSpan.FromMinutes(59));
        Assert.Equal(JobStatus.WaitingApproval, (await h.ContinueAsync(state.JobId)).Status);
        time.Advance(TimeSpan.FromMinutes(2));
        var settled = await h.ContinueAsync(state.JobId);
        Assert.Equal(JobStatus.Failed, settled.Status);
        Assert.Contains("expired", settled.Reason);
        Assert.Equal("expired", settled.Approvals.Values.Single().Status);
    }

    [Fact]
    public async Task ToolCallBudget_Overrun_FailsTheJob_WithBudgetExceeded()
    {
        var (h, server) = await PostingProjectAsync("policy: p\nversion: 1\nrules: []\n", constraints: ", max_tool_calls: 0");
        await using (h)
        await using (server)
        {
            var state = await h.RunAsync(await h.LoadAsync(), new { lines = new[] { 1 } });
            Assert.Equal(JobStatus.Failed, state.Status);
            Assert.Contains("budget exceeded", state.Reason);
            var exceeded = (await h.EventsAsync(state.JobId)).Single(e => e.Type == EventTypes.BudgetExceeded).GetPayload<BudgetExceededPayload>();
            Assert.Equal(("tool_calls", "0", "0; one more would exceed it", "fail"), (exceeded.Budget, exceeded.Limit, exceeded.Used, exceeded.Action));
            Assert.Empty(server.Requests);
        }
    }

    [Fact]
    public async Task TokenBudget_Overrun_StopsTheStepThatOverran_AndEscalationWaitsForAHuman()
    {
        await using var h = new GovernanceHarness();
        h.Write("ordo.yaml", "models:\n  fast: { provider: scripted, fixtures: fixtures.yaml, price: { input_per_1k: 1.0, output_per_1k: 1.0 } }\n");
        h.Write("fixtures.yaml", "responses:\n  - { agent: talker, content: '{\"ok\": true}', usage: { input_tokens: 900, output_tokens: 200 } }\n");
        h.Write("workflow.yaml", """
            ordo: 1
            workflow: tokens
            version: 1
            constraints: { max_tokens: 1000, on_exceeded: escalate }
            agents:
              talker: { kind: llm, tier: fast }
            steps:
              - { id: talk, agent: talker, next: after }
              - { id: after, transform: { set: { done: true } } }
            """);
        var state = await h.RunAsync(await h.LoadAsync());
        Assert.Equal(JobStatus.WaitingApproval, state.Status);
        var events = await h.EventsAsync(state.JobId);
        var exceeded = events.Single(e => e.Type == EventTypes.BudgetExceeded).GetPayload<BudgetExceededPayload>();
        Assert.Equal(("tokens", "1000", "1100", "escalate"), (exceeded.Budget, exceeded.Limit, exceeded.Used, exceeded.Action));
        Assert.Contains(events, e => e.Type == EventTypes.Escalated);
        Assert.False(state.Steps.ContainsKey("after"));
        await h.Runtime.DecideAsync(state.JobId, "budget.tokens", "ops", true, "worth it");
        var done = await h.ContinueAsync(state.JobId);
        Assert.Equal(JobStatus.Completed, done.Status);
        Assert.Contains("tokens", done.WaivedBudgets);
    }

    [Fact]
    public async Task KillSwitch_SetWhileAJobRuns_StopsItAtItsNextToolCall()
    {
        var (h, server) = await PostingProjectAsync("policy: p\nversion: 1\nrules: []\n");
        await using (h)
        await using (server)
        {
            var entered = new TaskCompletionSource();
            var release = new TaskCompletionSource();
            h.AddCodeAgent("Test.Wait", async (ctx, ct) =>
            {
                entered.TrySetResult();
                await release.Task.WaitAsync(ct);
                return Ordo.Json.Of(new { waited = true });
            });
            h.Write("workflow.yaml", """
                ordo: 1
                workflow: killable
                version: 1
                agents:
                  waiter: { kind: code, type: Test.Wait }
                steps:
                  - { id: wait, agent: waiter, next: post }
                  - { id: post, tool: ledger.post, args: { lines: [1] } }
                """);
            var job = await h.Runtime.SubmitAsync(await h.LoadAsync(), null);
            var run = h.Runtime.RunAsync(new RunRequest { RootJobId = job.JobId, UntilIdle = true });
            await entered.Task;
            await h.Store.SetKillSwitchAsync(new KillSwitch("tool:ledger.*", "vendor outage", "ops", DateTimeOffset.UtcNow));
            release.SetResult();
            await run;
            var state = (await h.Runtime.GetStateAsync(job.JobId))!;
            Assert.Equal(JobStatus.Cancelled, state.Status);
            Assert.Contains("tool:ledger.*", state.Reason);
            Assert.Contains("vendor outage", state.Reason);
            Assert.Empty(server.Requests);
            var triggered = (await h.EventsAsync(job.JobId)).Single(e => e.Type == EventTypes.KillSwitchTriggered).GetPayload<KillSwitchTriggeredPayload>();
            Assert.Equal(("tool:ledger.*", "tool:ledger.post"), (triggered.Target, triggered.Subject));
        }
    }

    [Fact]
    public async Task KillSwitch_OnAStepKindOrAgent_StopsTheJobBeforeTheStep()
    {
        var (h, server) = await PostingProjectAsync("policy: p\nversion: 1\nrules: []\nkill_switches: [ { step: transform } ]\n");
        await using (h)
        await using (server)
        {
            var state = await h.RunAsync(await h.LoadAsync(), new { lines = new[] { 1 } });
            Assert.Equal(JobStatus.Cancelled, state.Status);
            Assert.Contains("step:transform", state.Reason);
            Assert.Contains(await h.Store.ListKillSwitchesAsync(), s => s.Target == "step:transform");
            Assert.True(await h.Store.ClearKillSwitchAsync("step:transform"));
            var after = await h.RunAsync(await h.LoadAsync(), new { lines = new[] { 1 } });
            Assert.Equal(JobStatus.Completed, after.Status);
        }
    }

    [Fact]
    public async Task JobCompletePolicy_CanHoldCompletionForApproval()
    {
        var (h, server) = await PostingProjectAsync("""
            policy: p
            version: 2
            rules:
              - { id: sign-off, on: job_complete, effect: require_approval, approval: { role: approver }, reason: "a human signs off" }
            """);
        await using (h)
        await using (server)
        {
            var state = await h.RunAsync(await h.LoadAsync(), new { lines = new[] { 1 } });
            Assert.Equal(JobStatus.WaitingApproval, state.Status);
            Assert.Equal("job.complete", state.Approvals.Values.Single().Id);
            var outcome = await h.Runtime.DecideAsync(state.JobId, null, "bob", true, "fine");
            Assert.Equal(JobStatus.Completed, outcome.JobStatus);
        }
    }

    [Fact]
    public async Task Escalation_AfterTheLastAttempt_WaitsForAHuman_WhoGrantsAnotherAttempt()
    {
        var calls = 0;
        await using var h = new GovernanceHarness();
        h.AddCodeAgent("Test.Flaky", (ctx, ct) => Interlocked.Increment(ref calls) < 3 ? throw new InvalidOperationException("down") : Task.FromResult(Ordo.Json.Of(new { ok = true })));
        h.Write("workflow.yaml", """
            ordo: 1
            workflow: escalate
            version: 1
            agents:
              flaky: { kind: code, type: Test.Flaky }
            steps:
              - { id: work, agent: flaky, retry: { max_attempts: 2, backoff: 1ms }, on_failure: escalate }
            """);
        var state = await h.RunAsync(await h.LoadAsync());
        Assert.Equal(JobStatus.WaitingApproval, state.Status);
        var escalated = (await h.EventsAsync(state.JobId)).Single(e => e.Type == EventTypes.Escalated).GetPayload<EscalatedPayload>();
        Assert.Contains("failed after 2 attempts", escalated.Reason);
        await h.Runtime.DecideAsync(state.JobId, escalated.ApprovalId, "ops", true, "dependency is back");
        var done = await h.ContinueAsync(state.JobId);
        Assert.Equal(JobStatus.Completed, done.Status);
        Assert.Equal(3, done.Steps["work"].Attempts);
    }

    [Fact]
    public async Task TenantQuota_RefusesSubmissionsOverIt()
    {
        var (h, server) = await PostingProjectAsync("policy: p\nversion: 1\nrules: []\n", tenants: """
            tenants:
              acme: { quota: { concurrent_jobs: 1 } }
            """);
        await using (h)
        await using (server)
        {
            var wf = await h.LoadAsync();
            await h.Runtime.SubmitAsync(wf, Ordo.Json.Of(new { lines = new[] { 1 } }), new SubmitOptions { Tenant = "acme" });
            var e = await Assert.ThrowsAsync<QuotaExceededException>(() => h.Runtime.SubmitAsync(wf, Ordo.Json.Of(new { lines = new[] { 1 } }), new SubmitOptions { Tenant = "acme" }));
            Assert.Contains("concurrent_jobs", e.Message);
            Assert.Single(await h.Store.ListJobsAsync(new JobQuery { Tenant = "acme" }));
            await h.Runtime.SubmitAsync(wf, Ordo.Json.Of(new { lines = new[] { 1 } }), new SubmitOptions { Tenant = "globex" });
        }
    }

    [Fact]
    public async Task RetryVariations_EscalateTheTier_AndAreRecorded()
    {
        await using var h = new GovernanceHarness();
        h.Write("ordo.yaml", "models:\n  fast: { provider: scripted, fixtures: fast.yaml }\n  standard: { provider: scripted, fixtures: standard.yaml }\n");
        h.Write("fast.yaml", "responses:\n  - { agent: writer, content: 'not json' }\n");
        h.Write("standard.yaml", "responses:\n  - { agent: writer, content: '{\"text\": \"better\"}' }\n");
        h.Write("workflow.yaml", """
            ordo: 1
            workflow: vary
            version: 1
            agents:
              writer: { kind: llm, tier: fast }
            steps:
              - { id: write, agent: writer, retry: { max_attempts: 2, backoff: 1ms, vary: [escalate_tier] } }
            """);
        var state = await h.RunAsync(await h.LoadAsync());
        Assert.Equal(JobStatus.Completed, state.Status);
        var events = await h.EventsAsync(state.JobId);
        Assert.Equal(["fast", "standard"], events.Where(e => e.Type == EventTypes.ModelCallSucceeded).Select(e => e.GetPayload<ModelCallSucceededPayload>().Tier));
        Assert.Equal(["escalate_tier"], events.Single(e => e.Type == EventTypes.StepScheduled && e.Attempt == 2).GetPayload<StepScheduledPayload>().Variations!);
    }
}
