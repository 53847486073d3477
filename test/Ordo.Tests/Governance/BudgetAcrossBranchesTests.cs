using System.Text.Json;
using Ordo.Engine;
using Ordo.Events;
using Ordo.State;
using Ordo.TestServers;

namespace Ordo.Tests.Governance;

/// <summary>
/// Budgets hold when steps run at once (foreach items, parallel branches, several workers): each tool call takes its
/// place in the job's count in the same write that records it, and model calls under a cost or token budget are
/// admitted one write at a time; every call that reaches a tool or a provider is in the log.
/// </summary>
public sealed class BudgetAcrossBranchesTests
{
    private static OrdoRuntimeOptions Concurrent(int workers = 8)
        => new() { Workers = workers, PollInterval = TimeSpan.FromMilliseconds(5), KillSwitchRefresh = TimeSpan.Zero };

    [Theory]
    [InlineData(1)]
    [InlineData(8)]
    public async Task MaxToolCalls_OverAForeachOfTwentyCalls_NeverRunsMoreThanTheBudget(int workers)
    {
        var calls = 0;
        await using var h = new GovernanceHarness(options: Concurrent(workers));
        h.Write("ordo.yaml", "tools: [tools.yaml]");
        h.Write("tools.yaml", "tools:\n  t.hit: { kind: code, effect: read, retry: { max_attempts: 1 } }\n");
        h.AddCodeTool("t.hit", inv =>
        {
            Interlocked.Increment(ref calls);
            Thread.Sleep(5);
            return inv.Args;
        });
        h.Write("workflow.yaml", """
            ordo: 1
            workflow: many-calls
            version: 1
            constraints: { max_tool_calls: 3 }
            steps:
              - { id: each, foreach: "${ input.items }", do: hit, max_concurrency: 20 }
              - { id: hit, tool: t.hit, args: { n: "${ item }" } }
            """);
        var state = await h.RunAsync(await h.LoadAsync(), new { items = Enumerable.Range(1, 20).ToArray() });

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.True(calls <= 3, $"{calls} calls ran with max_tool_calls: 3");
        var events = await h.EventsAsync(state.JobId);
        Assert.Equal(calls, events.Count(e => e.Type == EventTypes.ToolCallRequested));
        Assert.Contains(events, e => e.Type == EventTypes.BudgetExceeded && e.GetPayload<BudgetExceededPayload>().Budget == "tool_calls");
        Assert.True(state.Usage.ToolCalls <= 3);
    }

    [Fact]
    public async Task MaxToolCalls_OverAParallelOfSix_RunsTwoAndFails()
    {
        var calls = 0;
        await using var h = new GovernanceHarness(options: Concurrent());
        h.Write("ordo.yaml", "tools: [tools.yaml]");
        h.Write("tools.yaml", "tools:\n  t.hit: { kind: code, effect: write, retry: { max_attempts: 1 } }\n");
        h.AddCodeTool("t.hit", inv =>
        {
            Interlocked.Increment(ref calls);
            return inv.Args;
        });
        h.Write("workflow.yaml", """
            ordo: 1
            workflow: fan-out
            version: 1
            constraints: { max_tool_calls: 2 }
            steps:
              - { id: fan, parallel: [a, b, c, d, e, f], join: done }
              - { id: a, tool: t.hit }
              - { id: b, tool: t.hit }
              - { id: c, tool: t.hit }
              - { id: d, tool: t.hit }
              - { id: e, tool: t.hit }
              - { id: f, tool: t.hit }
              - { id: done, transform: { set: { ok: true } } }
            """);
        var state = await h.RunAsync(await h.LoadAsync());

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Equal(2, calls);
        var events = await h.EventsAsync(state.JobId);
        Assert.Equal(2, events.Count(e => e.Type == EventTypes.ToolCallRequested));
        Assert.Contains(events, e => e.Type == EventTypes.BudgetExceeded);
        Assert.DoesNotContain(events, e => e.Type == EventTypes.JobCompleted);
    }

    [Fact]
    public async Task PerJobRateLimit_HoldsAcrossBranches()
    {
        var calls = 0;
        await using var h = new GovernanceHarness(options: Concurrent());
        h.Write("ordo.yaml", "tools: [tools.yaml]");
        h.Write("tools.yaml", "tools:\n  t.hit: { kind: code, effect: read, retry: { max_attempts: 1 }, rate_limit: { per_job: 3 } }\n");
        h.AddCodeTool("t.hit", inv =>
        {
            Interlocked.Increment(ref calls);
            return inv.Args;
        });
        h.Write("workflow.yaml", """
            ordo: 1
            workflow: per-job
            version: 1
            steps:
              - { id: each, foreach: "${ input.items }", do: hit, max_concurrency: 10 }
              - { id: hit, tool: t.hit, retry: { max_attempts: 1 } }
            """);
        var state = await h.RunAsync(await h.LoadAsync(), new { items = Enumerable.Range(1, 10).ToArray() });
        Assert.Equal(3, calls);
        var events = await h.EventsAsync(state.JobId);
        Assert.Equal(3, events.Count(e => e.Type == EventTypes.ToolCallRequested));
        Assert.Contains(events, e => e.Type == EventTypes.ToolCallFailed && e.GetPayload<ToolCallFailedPayload>().Error == "rate_limited");
    }

    [Fact]
    public async Task MaxCost_OverTwentyConcurrentModelCalls_DoesNotOvershootByMoreThanOneCall_AndLogsEveryRequest()
    {
        // Each call: 1,000 output tokens at $0.01 per 1K = $0.01; the job may cost $0.025.
        var requests = 0;
        await using var model = await ModelAsync(() => Interlocked.Increment(ref requests));
        await using var h = new GovernanceHarness(options: Concurrent());
        h.Write("ordo.yaml", $"models:\n  fast: {{ provider: openai-compatible, model: fake, endpoint: \"{model.Address}v1\", price: {{ input_per_1k: 0, output_per_1k: 0.01 }} }}\n");
        h.Write("workflow.yaml", """
            ordo: 1
            workflow: costly-fan
            version: 1
            constraints: { max_cost: 0.025 }
            agents:
              talker: { kind: llm, tier: fast }
            steps:
              - { id: each, foreach: "${ input.items }", do: talk, max_concurrency: 20 }
              - { id: talk, agent: talker, input: { n: "${ item }" }, retry: { max_attempts: 1 } }
            """);
        var state = await h.RunAsync(await h.LoadAsync(), new { items = Enumerable.Range(1, 20).ToArray() });

        Assert.Equal(JobStatus.Failed, state.Status);
        var events = await h.EventsAsync(state.JobId);
        // Calls without an output bound take turns: the job stops at the call that spent the budget.
        Assert.Equal(requests, events.Count(e => e.Type == EventTypes.ModelCallRequested));
        Assert.Equal(requests, events.Count(e => e.Type is EventTypes.ModelCallSucceeded or EventTypes.ModelCallFailed));
        Assert.Equal(3, requests);
        Assert.Equal(0.03m, state.Usage.Cost);
        Assert.Contains(events, e => e.Type == EventTypes.BudgetExceeded && e.GetPayload<BudgetExceededPayload>().Budget == "cost");
    }

    [Fact]
    public async Task MaxCost_WithAnOutputBound_NeverOvershoots_AndCallsRunConcurrentlyWhileTheyFit()
    {
        // Bounded at 1,000 output tokens, each call holds $0.01 + its input: two fit in $0.025, a third never starts.
        var requests = 0;
        var inFlight = 0;
        var most = 0;
        await using var model = await ModelAsync(() =>
        {
            Interlocked.Increment(ref requests);
            var now = Interlocked.Increment(ref inFlight);
            InterlockedMax(ref most, now);
            Thread.Sleep(50);
            Interlocked.Decrement(ref inFlight);
        });
        await using var h = new GovernanceHarness(options: Concurrent());
        h.Write("ordo.yaml", $"models:\n  fast: {{ provider: openai-compatible, model: fake, endpoint: \"{model.Address}v1\", max_output_tokens: 1000, price: {{ input_per_1k: 0, output_per_1k: 0.01 }} }}\n");
        h.Write("workflow.yaml", """
            ordo: 1
            workflow: bounded-fan
            version: 1
            constraints: { max_cost: 0.025 }
            agents:
              talker: { kind: llm, tier: fast }
            steps:
              - { id: each, foreach: "${ input.items }", do: talk, max_concurrency: 20 }
              - { id: talk, agent: talker, input: { n: "${ item }" }, retry: { max_attempts: 1 } }
            """);
        var state = await h.RunAsync(await h.LoadAsync(), new { items = Enumerable.Range(1, 20).ToArray() });

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Equal(2, requests);
        Assert.True(state.Usage.Cost <= 0.025m, $"cost {state.Usage.Cost}");
        var events = await h.EventsAsync(state.JobId);
        Assert.Equal(2, events.Count(e => e.Type == EventTypes.ModelCallRequested));
        var exceeded = events.Single(e => e.Type == EventTypes.BudgetExceeded).GetPayload<BudgetExceededPayload>();
        Assert.Equal("cost", exceeded.Budget);
        Assert.Contains("the next model call may cost up to $0.01", exceeded.Used, StringComparison.Ordinal);
        var request = JsonDocument.Parse(model.Requests[0].Body).RootElement;
        Assert.Equal(1000, request.GetProperty("max_completion_tokens").GetInt32());
    }

    [Fact]
    public async Task MaxTokens_WithAnOutputBound_RefusesACallWhoseWorstCaseDoesNotFit()
    {
        var requests = 0;
        await using var model = await ModelAsync(() => Interlocked.Increment(ref requests));
        await using var h = new GovernanceHarness();
        h.Write("ordo.yaml", $"models:\n  fast: {{ provider: openai-compatible, model: fake, endpoint: \"{model.Address}v1\", max_output_tokens: 5000 }}\n");
        h.Write("workflow.yaml", """
            ordo: 1
            workflow: tokens
            version: 1
            constraints: { max_tokens: 4000 }
            agents:
              talker: { kind: llm, tier: fast }
            steps:
              - { id: talk, agent: talker }
            """);
        var state = await h.RunAsync(await h.LoadAsync());
        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Equal(0, requests);
        Assert.Contains("may use up to", state.Reason, StringComparison.Ordinal);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }

    /// <summary>An OpenAI-compatible endpoint whose every answer used 1,000 output tokens.</summary>
    private static Task<LoopbackServer> ModelAsync(Action onRequest)
        => LoopbackServer.StartAsync((ctx, req) =>
        {
            onRequest();
            var body = JsonSerializer.Serialize(new
            {
                id = "chatcmpl-1",
                @object = "chat.completion",
                created = 1_700_000_000,
                model = "fake",
                choices = new[] { new { index = 0, message = new { role = "assistant", content = """{"ok": true}""" }, finish_reason = "stop" } },
                usage = new { prompt_tokens = 0, completion_tokens = 1000, total_tokens = 1000 },
            });
            return LoopbackServer.JsonAsync(ctx, 200, body);
        });
}
