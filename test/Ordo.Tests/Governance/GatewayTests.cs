using System.Collections.Concurrent;
using System.Text.Json;
using Ordo.Engine;
using Ordo.Events;
using Ordo.State;
using Ordo.TestServers;

namespace Ordo.Tests.Governance;

/// <summary>The tool gateway against real HTTP servers on 127.0.0.1.</summary>
public sealed class GatewayTests
{
    private static string Workflow(string steps, string extra = "") => $$"""
        ordo: 1
        workflow: gateway
        version: 1
        {{extra}}
        steps:
        {{steps}}
        """;

    [Fact]
    public async Task HttpTool_SendsTheIdempotencyKey_FillsTheUrl_AndReturnsTheBody()
    {
        await using var server = await LoopbackServer.StartAsync((ctx, req) => LoopbackServer.JsonAsync(ctx, 200, $$"""{"path":"{{req.Path}}","body":{{req.Body}}}"""));
        await using var h = new GovernanceHarness();
        h.Write("ordo.yaml", "tools: [tools.yaml]");
        h.Write("tools.yaml", $$"""
            tools:
              crm.update:
                kind: http
                method: POST
                url: "{{server.Address}}customers/{customer_id}"
                effect: write
                args: { type: object, required: [customer_id], properties: { customer_id: { type: string }, tier: { type: string } } }
                result: { type: object, required: [path] }
            """);
        h.Write("workflow.yaml", Workflow("""
              - { id: update, tool: crm.update, args: { customer_id: "c 42", tier: gold } }
            """));
        var state = await h.RunAsync(await h.LoadAsync());
        Assert.Equal(JobStatus.Completed, state.Status);
        var request = Assert.Single(server.Requests);
        Assert.Equal("/customers/c 42", request.Path);
        Assert.Equal("""{"tier":"gold"}""", request.Body);
        Assert.Equal($"{state.JobId}:update#1:0", request.IdempotencyKey);
        Assert.Equal("gold", state.Steps["update"].Output!.Value.GetProperty("body").GetProperty("tier").GetString());
        var events = await h.EventsAsync(state.JobId);
        var requested = events.Single(e => e.Type == EventTypes.ToolCallRequested).GetPayload<ToolCallRequestedPayload>();
        Assert.Equal(request.IdempotencyKey, requested.IdempotencyKey);
    }

    [Fact]
    public async Task TransientFailures_AreRetriedInTheGateway_WithTheSameKey()
    {
        var calls = 0;
        await using var server = await LoopbackServer.StartAsync((ctx, req) => Interlocked.Increment(ref calls) switch
        {
            1 => LoopbackServer.JsonAsync(ctx, 500, """{"error":"boom"}"""),
            2 => LoopbackServer.JsonAsync(ctx, 200, "this is not json"),
            _ => LoopbackServer.JsonAsync(ctx, 200, """{"ok":true}"""),
        });
        await using var h = new GovernanceHarness();
        h.Write("ordo.yaml", "tools: [tools.yaml]");
        h.Write("tools.yaml", $$"""
            tools:
              flaky:
                kind: http
                url: "{{server.Address}}x"
                effect: write
                retry: { max_attempts: 3, backoff: 1ms }
            """);
        h.Write("workflow.yaml", Workflow("  - { id: call, tool: flaky }"));
        var state = await h.RunAsync(await h.LoadAsync());
        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal(3, server.Requests.Count);
        Assert.Single(server.Requests.Select(r => r.IdempotencyKey).Distinct());
        var succeeded = (await h.EventsAsync(state.JobId)).Single(e => e.Type == EventTypes.ToolCallSucceeded).GetPayload<ToolCallSucceededPayload>();
        Assert.Equal(3, succeeded.Attempts);
    }

    [Fact]
    public async Task ClientErrors_AreNotRetried_AndFailTheStep()
    {
        await using var server = await LoopbackServer.StartAsync((ctx, req) => LoopbackServer.JsonAsync(ctx, 404, """{"error":"no such customer"}"""));
        await using var h = new GovernanceHarness();
        h.Write("ordo.yaml", "tools: [tools.yaml]");
        h.Write("tools.yaml", $$"""
            tools:
              missing: { kind: http, method: GET, url: "{{server.Address}}customers/1", effect: read, retry: { max_attempts: 5, backoff: 1ms } }
            """);
        h.Write("workflow.yaml", Workflow("  - { id: call, tool: missing, retry: { max_attempts: 3, backoff: 1ms } }"));
        var state = await h.RunAsync(await h.LoadAsync());
        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains("answered 404", state.Reason);
        Assert.Contains("after 1 attempt", state.Reason);
        Assert.Single(server.Requests);
    }

    [Fact]
    public async Task Timeout_IsEnforcedPerAttempt()
    {
        await using var server = await LoopbackServer.StartAsync(async (ctx, req) =>
        {
            await Task.Delay(TimeSpan.FromSeconds(10), ctx.RequestAborted).ContinueWith(_ => { }, TaskScheduler.Default);
            if (!ctx.RequestAborted.IsCancellationRequested) await LoopbackServer.JsonAsync(ctx, 200, "{}");
        });
        await using var h = new GovernanceHarness();
        h.Write("ordo.yaml", "tools: [tools.yaml]");
        h.Write("tools.yaml", $$"""
            tools:
              slow: { kind: http, url: "{{server.Address}}slow", effect: write, timeout: 150ms, retry: { max_attempts: 2, backoff: 1ms } }
            """);
        h.Write("workflow.yaml", Workflow("  - { id: call, tool: slow }"));
        var state = await h.RunAsync(await h.LoadAsync());
        Assert.Equal(JobStatus.Failed, state.Status);
        var failed = (await h.EventsAsync(state.JobId)).Single(e => e.Type == EventTypes.ToolCallFailed).GetPayload<ToolCallFailedPayload>();
        Assert.Equal("timeout", failed.Error);
        Assert.Equal(2, failed.Attempts);
    }

    [Fact]
    public async Task CircuitBreaker_OpensAfterFailures_RefusesCalls_ThenClosesAfterRecovery_AndEventsSaySo()
    {
        var down = true;
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await LoopbackServer.StartAsync((ctx, req) => down ? LoopbackServer.JsonAsync(ctx, 503, "{}") : LoopbackServer.JsonAsync(ctx, 200, """{"ok":true}"""));
        await using var h = new GovernanceHarness(options: new OrdoRuntimeOptions { Workers = 1, TimeProvider = time, PollInterval = TimeSpan.FromMilliseconds(5), KillSwitchRefresh = TimeSpan.Zero });
        h.Write("ordo.yaml", "tools: [tools.yaml]");
        h.Write("tools.yaml", $$"""
            tools:
              dep:
                kind: http
                url: "{{server.Address}}dep"
                effect: write
                retry: { max_attempts: 1 }
                circuit_breaker: { failure_ratio: 0.5, min_calls: 4, break: 500ms }
            """);
        h.Write("workflow.yaml", Workflow("  - { id: call, tool: dep, retry: { max_attempts: 1 } }"));
        var wf = await h.LoadAsync();
        var jobs = new List<JobState>();
        for (var i = 0; i < 8; i++) jobs.Add(await h.RunAsync(wf));
        Assert.All(jobs, j => Assert.Equal(JobStatus.Failed, j.Status));
        Assert.Equal(4, server.Requests.Count);
        var all = new List<EventEnvelope>();
        foreach (var j in jobs) all.AddRange(await h.EventsAsync(j.JobId));
        Assert.Contains(all, e => e.Type == EventTypes.CircuitStateChanged && e.GetPayload<CircuitStateChangedPayload>().To == "open");
        var refused = all.Where(e => e.Type == EventTypes.ToolCallFailed).Select(e => e.GetPayload<ToolCallFailedPayload>()).Where(p => p.Error == "circuit_open").ToList();
        Assert.Equal(4, refused.Count);
        Assert.All(refused, p => Assert.EndsWith("calls are refused until it closes (it may close in 500 ms)", p.Message, StringComparison.Ordinal));

        down = false;
        time.Advance(TimeSpan.FromSeconds(1));
        var recovered = await h.RunAsync(wf);
        Assert.Equal(JobStatus.Completed, recovered.Status);
        Assert.Contains(await h.EventsAsync(recovered.JobId), e => e.Type == EventTypes.CircuitStateChanged && e.GetPayload<CircuitStateChangedPayload>().To == "closed");
    }

    [Fact]
    public async Task RetryBudget_KeepsRetriesABoundedFractionOfCalls_WhenADependencyIsDown()
    {
        await using var server = await LoopbackServer.StartAsync((ctx, req) => LoopbackServer.JsonAsync(ctx, 500, "{}"));
        await using var h = new GovernanceHarness();
        h.Write("ordo.yaml", "tools: [tools.yaml]");
        h.Write("tools.yaml", $$"""
            tools:
              down:
                kind: http
                url: "{{server.Address}}down"
                effect: write
                retry: { max_attempts: 4, backoff: 1ms }
                circuit_breaker: { failure_ratio: 1.0, min_calls: 1000, break: 1s }
            """);
        h.Write("workflow.yaml", Workflow("  - { id: call, tool: down }"));
        var wf = await h.LoadAsync();
        const int calls = 40;
        for (var i = 0; i < calls; i++) await h.RunAsync(wf);
        var amplification = server.Requests.Count / (double)calls;
        Assert.InRange(amplification, 1, 1.5);
    }

    [Fact]
    public async Task SecretInAHeader_IsSent_ButRedactedEverywhere_EvenWhenEchoed()
    {
        const string token = "s3cr3t-t0ken-value-42";
        await using var server = await LoopbackServer.StartAsync((ctx, req) =>
            LoopbackServer.JsonAsync(ctx, 200, JsonSerializer.Serialize(new { echoed = req.Headers["Authorization"], note = "your token is " + token })));
        await using var h = new GovernanceHarness(secrets: new() { ["CRM_TOKEN"] = token });
        h.Write("ordo.yaml", "tools: [tools.yaml]");
        h.Write("tools.yaml", $$"""
            tools:
              crm:
                kind: http
                url: "{{server.Address}}me"
                headers: { Authorization: "Bearer ${secret:CRM_TOKEN}" }
                effect: read
            """);
        h.Write("workflow.yaml", Workflow("  - { id: call, tool: crm }"));
        var state = await h.RunAsync(await h.LoadAsync());
        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("Bearer " + token, server.Requests[0].Headers["Authorization"]);
        foreach (var e in await h.EventsAsync(state.JobId))
        {
            Assert.DoesNotContain(token, e.PayloadText, StringComparison.Ordinal);
        }

        Assert.Contains("[REDACTED:CRM_TOKEN]", state.Steps["call"].Output!.Value.GetRawText(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task DryRun_RecordsSideEffectsWithoutRunningThem_ButRunsReads()
    {
        await using var server = await LoopbackServer.StartAsync((ctx, req) => LoopbackServer.JsonAsync(ctx, 200, """{"n":1}"""));
        await using var h = new GovernanceHarness(options: new OrdoRuntimeOptions { Workers = 1, DryRun = true, PollInterval = TimeSpan.FromMilliseconds(5) });
        h.Write("ordo.yaml", "tools: [tools.yaml]");
        h.Write("tools.yaml", $$"""
            tools:
              read: { kind: http, method: GET, url: "{{server.Address}}r", effect: read }
              write: { kind: http, url: "{{server.Address}}w", effect: irreversible }
            """);
        h.Write("workflow.yaml", Workflow("""
              - { id: r, tool: read, next: w }
              - { id: w, tool: write }
            """));
        var state = await h.RunAsync(await h.LoadAsync());
        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal(["/r"], server.Requests.Select(r => r.Path));
        var dry = (await h.EventsAsync(state.JobId)).Where(e => e.Type == EventTypes.ToolCallSucceeded).Select(e => e.GetPayload<ToolCallSucceededPayload>()).Single(p => p.Tool == "write");
        Assert.True(dry.DryRun);
    }

    [Fact]
    public async Task ReadToolWithCache_IsServedFromCache_PerTenant()
    {
        await using var server = await LoopbackServer.StartAsync((ctx, req) => LoopbackServer.JsonAsync(ctx, 200, """{"rate":1.08}"""));
        await using var h = new GovernanceHarness();
        h.Write("ordo.yaml", "tools: [tools.yaml]");
        h.Write("tools.yaml", $$"""
            tools:
              fx: { kind: http, method: GET, url: "{{server.Address}}fx", effect: read, cache: 10m }
            """);
        h.Write("workflow.yaml", Workflow("  - { id: call, tool: fx, args: { pair: EURUSD } }"));
        var wf = await h.LoadAsync();
        await h.RunAsync(wf, tenant: "acme");
        var second = await h.RunAsync(wf, tenant: "acme");
        await h.RunAsync(wf, tenant: "globex");
        Assert.Equal(2, server.Requests.Count);
        Assert.True((await h.EventsAsync(second.JobId)).Single(e => e.Type == EventTypes.ToolCallSucceeded).GetPayload<ToolCallSucceededPayload>().Cached);
    }

    [Fact]
    public async Task PerJobRateLimit_RefusesCallsBeyondIt()
    {
        await using var server = await LoopbackServer.StartAsync((ctx, req) => LoopbackServer.JsonAsync(ctx, 200, "{}"));
        await using var h = new GovernanceHarness();
        h.Write("ordo.yaml", "tools: [tools.yaml]");
        h.Write("tools.yaml", $$"""
            tools:
              limited: { kind: http, url: "{{server.Address}}l", effect: write, rate_limit: { per_job: 2 } }
            """);
        h.Write("workflow.yaml", Workflow("""
              - { id: a, tool: limited, next: b }
              - { id: b, tool: limited, next: c }
              - { id: c, tool: limited }
            """));
        var state = await h.RunAsync(await h.LoadAsync());
        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains("may be called 2 times per job", state.Reason);
        Assert.Equal(2, server.Requests.Count);
    }

    [Fact]
    public async Task AgentMayCallOnlyItsListedTools()
    {
        await using var h = new GovernanceHarness();
        h.AddCodeTool("echo", inv => inv.Args);
        h.AddCodeAgent("Test.Caller", async (ctx, ct) => (await ctx.Tools.CallAsync("echo", Ordo.Json.Of(new { x = 1 }), ct)).Value);
        h.Write("ordo.yaml", "tools: [tools.yaml]");
        h.Write("tools.yaml", "tools:\n  echo: { kind: code, effect: read }\n");
        h.Write("workflow.yaml", Workflow("  - { id: a, agent: caller }", "agents:\n  caller: { kind: code, type: Test.Caller }"));
        var state = await h.RunAsync(await h.LoadAsync());
        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains("may not call 'echo'", state.Reason);
    }
}
