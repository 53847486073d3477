using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.Extensions.Time.Testing;
using Ordo.Engine;
using Ordo.Events;
using Ordo.State;
using Ordo.TestServers;
using Ordo.Tools;

namespace Ordo.Tests.Governance;

/// <summary>
/// Budgets (<c>max_cost</c>, <c>deadline</c>), the per-tenant rate limit of a tool and <c>retry.vary</c>, run from real
/// YAML workflows: each test checks the job's status, the events that explain it, and that nothing ran past the limit.
/// </summary>
public sealed class BudgetAndLimitTests
{
    private const string CitationInstruction = "Every claim must carry evidence: include an \"evidence\" list of { source, ref, quote } items.";
    private const string SwitchToolInstruction = "A previous attempt failed. If a tool call failed, use a different tool from your list.";

    private static OrdoRuntimeOptions FakeClockOptions(FakeTimeProvider time, int workers = 1)
        => new() { Workers = workers, TimeProvider = time, PollInterval = TimeSpan.FromMilliseconds(5), KillSwitchRefresh = TimeSpan.Zero };

    [Fact]
    public async Task MaxCost_Overrun_FailsTheJob_AtTheStepThatOverran_WithBudgetExceededNamingCost_AndTheNextStepNeverRuns()
    {
        var published = 0;
        await using var h = new GovernanceHarness();
        h.Write("ordo.yaml", """
            models:
              fast: { provider: scripted, fixtures: fixtures.yaml, price: { input_per_1k: 0.50, output_per_1k: 1.50 } }
            tools: [tools.yaml]
            """);
        // Each call: 1000 input tokens ($0.50) + 200 output tokens ($0.30) = $0.80.
        h.Write("fixtures.yaml", """
            responses:
              - { agent: drafter, content: '{"draft": "v1"}', usage: { input_tokens: 1000, output_tokens: 200 } }
              - { agent: reviewer, content: '{"verdict": "ok"}', usage: { input_tokens: 1000, output_tokens: 200 } }
            """);
        h.Write("tools.yaml", "tools:\n  report.publish: { kind: code, effect: write }\n");
        h.AddCodeTool("report.publish", inv =>
        {
            Interlocked.Increment(ref published);
            return inv.Args;
        });
        h.Write("workflow.yaml", """
            ordo: 1
            workflow: costly
            version: 1
            constraints: { max_cost: 1.00 }
            artifacts:
              draft: {}
              review: {}
            agents:
              drafter: { kind: llm, tier: fast, output: draft }
              reviewer: { kind: llm, tier: fast, output: review }
            steps:
              - { id: draft, agent: drafter, next: review }
              - { id: review, agent: reviewer, next: publish }
              - { id: publish, tool: report.publish, args: { report: "${ artifacts.review }" } }
            """);

        var state = await h.RunAsync(await h.LoadAsync());

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Equal("budget exceeded before step 'review' (after its model calls): the job may cost $1 and has cost $1.6", state.Reason);
        var events = await h.EventsAsync(state.JobId);

        // Both model calls were made and priced from the tier; the second one took the job over max_cost.
        var costs = events.Where(e => e.Type == EventTypes.ModelCallSucceeded).Select(e => e.GetPayload<ModelCallSucceededPayload>().Cost).ToList();
        Assert.Equal([0.8m, 0.8m], costs);
        Assert.Equal(1.6m, state.Usage.Cost);

        var exceeded = events.Single(e => e.Type == EventTypes.BudgetExceeded);
        Assert.Equal("review", exceeded.StepId);
        var p = exceeded.GetPayload<BudgetExceededPayload>();
        Assert.Equal(("cost", "1", "1.6", "fail", "step 'review' (after its model calls)"), (p.Budget, p.Limit, p.Used, p.Action, p.Before));
        var blocked = events.Single(e => e.Type == EventTypes.StepBlocked).GetPayload<StepBlockedPayload>();
        Assert.Equal(("budget", "cost"), (blocked.By, blocked.Rule));
        var failed = events.Single(e => e.Type == EventTypes.JobFailed).GetPayload<JobFailedPayload>();
        Assert.Equal(("budget_exceeded", "review"), (failed.Error, failed.Step));

        // The step within budget succeeded; the one that overran did not, and its output never became an artifact.
        Assert.Single(events, e => e.Type == EventTypes.StepSucceeded && e.StepId == "draft");
        Assert.DoesNotContain(events, e => e.Type == EventTypes.StepSucceeded && e.StepId == "review");
        Assert.True(state.Artifacts.ContainsKey("draft"));
        Assert.False(state.Artifacts.ContainsKey("review"));

        // Nothing ran past the limit.
        Assert.False(state.Steps.ContainsKey("publish"));
        Assert.DoesNotContain(events, e => e.StepId == "publish");
        Assert.DoesNotContain(events, e => e.Type == EventTypes.ToolCallRequested);
        Assert.Equal(0, published);
    }

    [Fact]
    public async Task Deadline_PassedWhileWaitingForApproval_FailsTheJobWhenItResumes_BeforeTheNextStepRuns()
    {
        // A whole-second start: the log keeps milliseconds, so the elapsed time reads exactly "90m".
        var time = new FakeTimeProvider(new DateTimeOffset(2025, 3, 14, 9, 0, 0, TimeSpan.Zero));
        var posted = 0;
        await using var h = new GovernanceHarness(options: FakeClockOptions(time));
        h.Write("ordo.yaml", "tools: [tools.yaml]\n");
        h.Write("tools.yaml", "tools:\n  ledger.post: { kind: code, effect: write }\n");
        h.AddCodeTool("ledger.post", inv =>
        {
            Interlocked.Increment(ref posted);
            return inv.Args;
        });
        h.Write("workflow.yaml", """
            ordo: 1
            workflow: payout
            version: 1
            constraints: { deadline: 1h }
            steps:
              - { id: prepare, transform: { set: { amount: 1200 } }, next: approve }
              - id: approve
                approval: { role: approver }
                next: post
              - { id: post, tool: ledger.post, args: { amount: "${ artifacts.amount }" } }
            """);
        var wf = await h.LoadAsync();

        // Control: approved 30 minutes in, within the deadline, the job completes and posts once.
        var onTime = await h.RunAsync(wf);
        Assert.Equal(JobStatus.WaitingApproval, onTime.Status);
        time.Advance(TimeSpan.FromMinutes(30));
        Assert.Equal("approved", (await h.Runtime.DecideAsync(onTime.JobId, null, "bob", true, "fine")).Status);
        onTime = await h.ContinueAsync(onTime.JobId);
        Assert.Equal(JobStatus.Completed, onTime.Status);
        Assert.Equal(1, posted);
        Assert.DoesNotContain(await h.EventsAsync(onTime.JobId), e => e.Type == EventTypes.BudgetExceeded);

        // The same workflow approved 90 minutes in: the deadline has passed while the job waited.
        var late = await h.RunAsync(wf);
        Assert.Equal(JobStatus.WaitingApproval, late.Status);
        time.Advance(TimeSpan.FromMinutes(59));
        Assert.Equal(JobStatus.WaitingApproval, (await h.ContinueAsync(late.JobId)).Status);
        time.Advance(TimeSpan.FromMinutes(31));
        Assert.Equal("approved", (await h.Runtime.DecideAsync(late.JobId, null, "bob", true, "sorry, I was away")).Status);
        late = await h.ContinueAsync(late.JobId);

        Assert.Equal(JobStatus.Failed, late.Status);
        Assert.Equal("budget exceeded before step 'approve': the job's deadline (1h) has passed (90m since submission)", late.Reason);
        var events = await h.EventsAsync(late.JobId);
        var exceeded = events.Single(e => e.Type == EventTypes.BudgetExceeded);
        Assert.Equal("approve", exceeded.StepId);
        var p = exceeded.GetPayload<BudgetExceededPayload>();
        Assert.Equal(("deadline", "1h", "90m since submission", "fail", "step 'approve'"), (p.Budget, p.Limit, p.Used, p.Action, p.Before));
        var failed = events.Single(e => e.Type == EventTypes.JobFailed).GetPayload<JobFailedPayload>();
        Assert.Equal(("budget_exceeded", "approve"), (failed.Error, failed.Step));

        // The resumed approval step was stopped before it ran; the step after it never ran.
        Assert.DoesNotContain(events, e => e.Type == EventTypes.StepSucceeded && e.StepId == "approve");
        Assert.False(late.Steps.ContainsKey("post"));
        Assert.DoesNotContain(events, e => e.StepId == "post");
        Assert.DoesNotContain(events, e => e.Type == EventTypes.ToolCallRequested);
        Assert.Equal(1, posted);
    }

    [Fact]
    public async Task PerTenantRateLimit_RefusesCallsBeyondTheLimitAndItsQueue_ForThatTenantOnly()
    {
        // rate_limit.per_tenant_per_minute: 1 admits one call per minute per tenant; one more call may wait in line
        // (QueueLimit = the limit); a call beyond that is refused at once as rate_limited.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var calls = new ConcurrentDictionary<string, int>(StringComparer.Ordinal);
        await using var h = new GovernanceHarness(options: FakeClockOptions(time, workers: 2));
        h.Write("ordo.yaml", "tools: [tools.yaml]\n");
        h.Write("tools.yaml", """
            tools:
              fx.quote: { kind: code, effect: read, retry: { max_attempts: 1 }, rate_limit: { per_tenant_per_minute: 1 } }
            """);
        h.AddCodeTool("fx.quote", inv =>
        {
            calls.AddOrUpdate(inv.Tenant, 1, (_, n) => n + 1);
            return Ordo.Json.Of(new { rate = 1.08 });
        });
        h.Write("workflow.yaml", """
            ordo: 1
            workflow: quote
            version: 1
            steps:
              - { id: quote, tool: fx.quote, args: { pair: EURUSD }, retry: { max_attempts: 1 }, timeout: 5s }
            """);
        var wf = await h.LoadAsync();

        // acme's first call of the minute is admitted.
        var first = await h.RunAsync(wf, tenant: "acme");
        Assert.Equal(JobStatus.Completed, first.Status);
        Assert.Equal(1, calls["acme"]);

        // Two more acme jobs in the same minute: one waits in line, the other finds the line full and is refused.
        var b = await h.Runtime.SubmitAsync(wf, null, new SubmitOptions { Submitter = "alice", Tenant = "acme" });
        var c = await h.Runtime.SubmitAsync(wf, null, new SubmitOptions { Submitter = "alice", Tenant = "acme" });
        var runs = new Dictionary<Task, JobId>
        {
            [h.Runtime.RunAsync(new RunRequest { RootJobId = b.JobId, UntilIdle = true })] = b.JobId,
            [h.Runtime.RunAsync(new RunRequest { RootJobId = c.JobId, UntilIdle = true })] = c.JobId,
        };
        var settled = await Task.WhenAny(runs.Keys).WaitAsync(TimeSpan.FromSeconds(30));
        await settled;
        var refusedId = runs[settled];
        var waitingId = refusedId == b.JobId ? c.JobId : b.JobId;
        var waitingRun = runs.Keys.Single(t => t != settled);

        var refused = (await h.Runtime.GetStateAsync(refusedId))!;
        Assert.Equal(JobStatus.Failed, refused.Status);
        Assert.Contains("tool 'fx.quote' is over its rate limit of 1 calls per minute for tenant 'acme'", refused.Reason);
        var refusedEvents = await h.EventsAsync(refusedId);
        var refusal = refusedEvents.Single(e => e.Type == EventTypes.ToolCallFailed).GetPayload<ToolCallFailedPayload>();
        Assert.Equal(("fx.quote", "rate_limited", true), (refusal.Tool, refusal.Error, refusal.Retryable));
        Assert.Equal("tool 'fx.quote' is over its rate limit of 1 calls per minute for tenant 'acme'", refusal.Message);
        Assert.Equal("rate_limited", refusedEvents.Single(e => e.Type == EventTypes.StepFailed).GetPayload<StepFailedPayload>().Error);
        Assert.DoesNotContain(refusedEvents, e => e.Type == EventTypes.ToolCallRequested);
        Assert.Equal(JobStatus.Running, (await h.Runtime.GetStateAsync(waitingId))!.Status);
        Assert.False(waitingRun.IsCompleted);
        Assert.Equal(1, calls["acme"]);

        // Meanwhile another tenant is unaffected: its call is admitted at once.
        var globex = await h.RunAsync(wf, tenant: "globex");
        Assert.Equal(JobStatus.Completed, globex.Status);
        Assert.Equal(1, calls["globex"]);
        Assert.Equal(1.08, globex.Steps["quote"].Output!.Value.GetProperty("rate").GetDouble());
        var globexEvents = await h.EventsAsync(globex.JobId);
        Assert.Single(globexEvents, e => e.Type == EventTypes.ToolCallSucceeded);
        Assert.DoesNotContain(globexEvents, e => e.Type == EventTypes.ToolCallFailed);

        // The acme call waiting in line gives up when its step times out (on the injected clock): it never ran.
        time.Advance(TimeSpan.FromSeconds(6));
        await waitingRun.WaitAsync(TimeSpan.FromSeconds(30));
        var waited = (await h.Runtime.GetStateAsync(waitingId))!;
        Assert.Equal(JobStatus.Failed, waited.Status);
        Assert.Contains("the step did not finish within 5s", waited.Reason);
        Assert.DoesNotContain(await h.EventsAsync(waitingId), e => e.Type is EventTypes.ToolCallRequested or EventTypes.ToolCallSucceeded);
        Assert.Equal(1, calls["acme"]);
        Assert.Equal(2, calls.Values.Sum());
    }

    [Fact]
    public async Task RetryVary_RequireCitations_AddsTheCitationInstructionToTheSecondRequestOnly_AndTheRetryRecordsIt()
    {
        // A model behind a real OpenAI-compatible endpoint that cites its evidence only when the instructions ask it to.
        await using var model = await FakeModelAsync(system => system.Contains(CitationInstruction, StringComparison.Ordinal)
            ? """{"amount": 120.5, "evidence": [{"source": "input", "quote": "120.5"}]}"""
            : """{"amount": 120.5}""");
        await using var h = new GovernanceHarness();
        h.Write("ordo.yaml", $"models:\n  fast: {{ provider: openai-compatible, model: fake-model, endpoint: \"{model.Address}v1\" }}\n");
        h.Write("workflow.yaml", """
            ordo: 1
            workflow: cite
            version: 1
            artifacts:
              finding: { schema: { type: object, required: [amount] }, evidence: required }
            agents:
              preparer: { kind: llm, tier: fast, output: finding }
            steps:
              - { id: prepare, agent: preparer, input: { invoice: "INV-1", amount: 120.5 }, retry: { max_attempts: 2, backoff: 1ms, vary: [require_citations] }, next: use }
              - { id: use, transform: { set: { amount: "${ artifacts.finding.amount }" } } }
            """);

        var state = await h.RunAsync(await h.LoadAsync());

        Assert.Equal(JobStatus.Completed, state.Status);
        var requests = model.Requests.Select(r => Request.Parse(r.Body)).ToList();
        Assert.Equal(2, requests.Count);
        Assert.DoesNotContain(CitationInstruction, requests[0].System, StringComparison.Ordinal);
        Assert.Contains(CitationInstruction, requests[1].System, StringComparison.Ordinal);
        Assert.DoesNotContain(SwitchToolInstruction, requests[1].System, StringComparison.Ordinal);
        // Only the instructions differ: the same model, the same input.
        Assert.Equal(requests[0].System + "\n\n" + CitationInstruction, requests[1].System);
        Assert.Equal(requests[0].User, requests[1].User);
        Assert.Equal(["fake-model", "fake-model"], requests.Select(r => r.Model));

        var events = await h.EventsAsync(state.JobId);
        var scheduled = events.Where(e => e.Type == EventTypes.StepScheduled && e.StepId == "prepare").ToList();
        Assert.Equal([1, 2], scheduled.Select(e => e.Attempt));
        Assert.Null(scheduled[0].GetPayload<StepScheduledPayload>().Variations);
        Assert.Equal("retry", scheduled[1].GetPayload<StepScheduledPayload>().Reason);
        Assert.Equal(["require_citations"], scheduled[1].GetPayload<StepScheduledPayload>().Variations!);

        // The first answer had no evidence and never propagated; the second, cited because it was asked to, did.
        var rejected = events.Single(e => e.Type == EventTypes.ArtifactRejected);
        Assert.Equal(1, rejected.Attempt);
        Assert.Contains("evidence", rejected.GetPayload<ArtifactVerdictPayload>().Reason);
        Assert.Equal("evidence_missing", events.Single(e => e.Type == EventTypes.StepFailed).GetPayload<StepFailedPayload>().Error);
        Assert.Equal(2, state.Artifacts["finding"].Verified!.Version);
        Assert.Equal(120.5, state.Artifacts["amount"].Verified!.Value.GetDouble());
    }

    [Fact]
    public async Task RetryVary_SwitchTool_TellsAnLlmAgentOnTheSecondRequestOnly_AndTheRetryRecordsIt()
    {
        await using var model = await FakeModelAsync(system => system.Contains(SwitchToolInstruction, StringComparison.Ordinal)
            ? """{"rate": 1.08, "via": "backup"}"""
            : "sorry, the rates tool is down");
        await using var h = new GovernanceHarness();
        h.Write("ordo.yaml", $"models:\n  fast: {{ provider: openai-compatible, model: fake-model, endpoint: \"{model.Address}v1\" }}\n");
        h.Write("workflow.yaml", """
            ordo: 1
            workflow: switch
            version: 1
            agents:
              quoter: { kind: llm, tier: fast }
            steps:
              - { id: quote, agent: quoter, input: { pair: EURUSD }, retry: { max_attempts: 2, backoff: 1ms, vary: [switch_tool] } }
            """);

        var state = await h.RunAsync(await h.LoadAsync());

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("backup", state.Steps["quote"].Output!.Value.GetProperty("via").GetString());
        var requests = model.Requests.Select(r => Request.Parse(r.Body)).ToList();
        Assert.Equal(2, requests.Count);
        Assert.DoesNotContain(SwitchToolInstruction, requests[0].System, StringComparison.Ordinal);
        Assert.Equal(requests[0].System + "\n\n" + SwitchToolInstruction, requests[1].System);
        Assert.DoesNotContain(CitationInstruction, requests[1].System, StringComparison.Ordinal);
        Assert.Equal(requests[0].User, requests[1].User);

        var events = await h.EventsAsync(state.JobId);
        Assert.Equal("malformed_output", events.Single(e => e.Type == EventTypes.StepFailed && e.Attempt == 1).GetPayload<StepFailedPayload>().Error);
        Assert.Null(events.Single(e => e.Type == EventTypes.StepScheduled && e.Attempt == 1).GetPayload<StepScheduledPayload>().Variations);
        Assert.Equal(["switch_tool"], events.Single(e => e.Type == EventTypes.StepScheduled && e.Attempt == 2).GetPayload<StepScheduledPayload>().Variations!);
        Assert.Equal(2, events.Count(e => e.Type == EventTypes.ModelCallSucceeded));
    }

    [Fact]
    public async Task RetryVary_SwitchTool_ReachesACodeAgent_WhichUsesAnotherToolOnTheRetry()
    {
        var seen = new ConcurrentQueue<IReadOnlyList<string>>();
        var primaryCalls = 0;
        var backupCalls = 0;
        await using var h = new GovernanceHarness();
        h.Write("ordo.yaml", "tools: [tools.yaml]\n");
        h.Write("tools.yaml", """
            tools:
              rates.primary: { kind: code, effect: read, retry: { max_attempts: 1 } }
              rates.backup: { kind: code, effect: read, retry: { max_attempts: 1 } }
            """);
        h.Code.AddTool("rates.primary", _ => new DelegateCodeTool((inv, ct) =>
        {
            Interlocked.Increment(ref primaryCalls);
            throw new ToolExecutionException("unavailable", "rates.primary is down", retryable: true);
        }));
        h.AddCodeTool("rates.backup", inv =>
        {
            Interlocked.Increment(ref backupCalls);
            return Ordo.Json.Of(new { rate = 1.08 });
        });
        h.AddCodeAgent("Test.Quoter", async (ctx, ct) =>
        {
            seen.Enqueue(ctx.Variations);
            var tool = ctx.Variations.Contains("switch_tool") ? "rates.backup" : "rates.primary";
            var result = await ctx.Tools.CallAsync(tool, Ordo.Json.Of(new { pair = "EURUSD" }), ct);
            return Ordo.Json.Of(new { rate = result.Value.GetProperty("rate").GetDouble(), via = tool });
        });
        h.Write("workflow.yaml", """
            ordo: 1
            workflow: switch-code
            version: 1
            agents:
              quoter: { kind: code, type: Test.Quoter, tools: [rates.primary, rates.backup] }
            steps:
              - { id: quote, agent: quoter, retry: { max_attempts: 2, backoff: 1ms, vary: [switch_tool] } }
            """);

        var state = await h.RunAsync(await h.LoadAsync());

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("rates.backup", state.Steps["quote"].Output!.Value.GetProperty("via").GetString());
        Assert.Equal(["", "switch_tool"], seen.Select(v => string.Join(",", v)));
        Assert.Equal((1, 1), (primaryCalls, backupCalls));

        var events = await h.EventsAsync(state.JobId);
        Assert.Equal(["switch_tool"], events.Single(e => e.Type == EventTypes.StepScheduled && e.Attempt == 2).GetPayload<StepScheduledPayload>().Variations!);
        var failed = events.Single(e => e.Type == EventTypes.ToolCallFailed);
        Assert.Equal((1, "rates.primary", "unavailable"), (failed.Attempt, failed.GetPayload<ToolCallFailedPayload>().Tool, failed.GetPayload<ToolCallFailedPayload>().Error));
        var succeeded = events.Single(e => e.Type == EventTypes.ToolCallSucceeded);
        Assert.Equal((2, "rates.backup"), (succeeded.Attempt, succeeded.GetPayload<ToolCallSucceededPayload>().Tool));
        Assert.Equal("unavailable", events.Single(e => e.Type == EventTypes.StepFailed).GetPayload<StepFailedPayload>().Error);
    }

    /// <summary>An OpenAI-compatible chat endpoint on 127.0.0.1 whose answer depends on the system instructions it receives.</summary>
    private static Task<LoopbackServer> FakeModelAsync(Func<string, string> answer)
        => LoopbackServer.StartAsync((ctx, req) =>
        {
            var content = answer(Request.Parse(req.Body).System);
            var body = JsonSerializer.Serialize(new
            {
                id = "chatcmpl-1",
                @object = "chat.completion",
                created = 1_700_000_000,
                model = "fake-model",
                choices = new[] { new { index = 0, message = new { role = "assistant", content }, finish_reason = "stop" } },
                usage = new { prompt_tokens = 100, completion_tokens = 20, total_tokens = 120 },
            });
            return LoopbackServer.JsonAsync(ctx, 200, body);
        });

    /// <summary>The parts of a chat-completions request these tests compare.</summary>
    private sealed record Request(string Model, string System, string User)
    {
        public static Request Parse(string body)
        {
            using var doc = JsonDocument.Parse(body);
            var root = doc.RootElement;
            var messages = root.GetProperty("messages").EnumerateArray().ToList();
            string TextOf(string role) => string.Concat(messages.Where(m => m.GetProperty("role").GetString() == role).Select(m => Text(m.GetProperty("content"))));
            return new Request(root.GetProperty("model").GetString()!, TextOf("system"), TextOf("user"));
        }

        private static string Text(JsonElement content) => content.ValueKind == JsonValueKind.String
            ? content.GetString()!
            : string.Concat(content.EnumerateArray().Select(p => p.TryGetProperty("text", out var t) ? t.GetString() : ""));
    }
}
