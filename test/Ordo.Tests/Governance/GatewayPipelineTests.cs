using System.Text.Json;
using Ordo.Configuration;
using Ordo.Engine;
using Ordo.Events;
using Ordo.Gateway;
using Ordo.Gateway.Pipeline;
using Ordo.State;
using Ordo.Tools;
using Ordo.Workflows;

namespace Ordo.Tests.Governance;

/// <summary>Each step of the tool gateway's pipeline alone, over a scope that only collects events.</summary>
public sealed class GatewayPipelineTests
{
    private const string Token = "t0ken-of-the-crm-1234";

    private static ToolDefinition Tool(string name = "crm", string kind = "code", ToolEffect effect = ToolEffect.Write) => new() { Name = name, Kind = kind, Effect = effect };

    private static (FakeScope Scope, ToolCallContext Context) Call(ToolDefinition? tool = null, string? toolName = null, AgentDefinition? agent = null, JsonElement? args = null, bool dryRun = false, string tenant = "acme")
    {
        tool ??= Tool();
        var scope = new FakeScope(new ProjectDefinition { BaseDirectory = ".", Tools = new Dictionary<string, ToolDefinition> { [tool.Name] = tool } }, tenant, dryRun);
        var context = new ToolCallContext(scope, agent, toolName ?? tool.Name, args ?? Json.Of(new { id = 1 }), scope.NextCallIndex(), TimeProvider.System);
        return (scope, context);
    }

    private static (FakeScope Scope, ToolCallContext Context) Resolved(ToolDefinition tool, JsonElement? args = null, bool dryRun = false)
    {
        var (scope, context) = Call(tool, args: args, dryRun: dryRun);
        context.Tool = tool;
        return (scope, context);
    }

    private static ToolCallDelegate Answer(JsonElement value, Action? onCall = null) => (context, _) =>
    {
        onCall?.Invoke();
        return ValueTask.FromResult(new ToolCallResult(context.CallId, context.ToolName, value, Cached: false));
    };

    private static readonly ToolCallDelegate Unreachable = (_, _) => throw new InvalidOperationException("the next handler must not be reached");

    private static SecretRedactor Redactor()
    {
        var secrets = new SecretResolver(name => name == "CRM_TOKEN" ? Token : null);
        secrets.Resolve("${secret:CRM_TOKEN}");
        return new SecretRedactor(secrets);
    }

    private static ToolCallFailedPayload Failed(FakeScope scope) => Assert.Single(scope.Recorded, e => e.Type == EventTypes.ToolCallFailed).TypedPayload as ToolCallFailedPayload ?? throw new InvalidOperationException();

    [Fact]
    public async Task Builder_RunsHandlersInTheOrderTheyWereAdded_ThenTheTerminal()
    {
        var seen = new List<string>();
        var pipeline = new ToolCallPipelineBuilder()
            .Use(new Tracing("a", seen))
            .Use([new Tracing("b", seen), new Tracing("c", seen)])
            .Build(Answer(Json.Of(new { }), () => seen.Add("terminal")));
        var (_, context) = Call();

        await pipeline(context, default);

        Assert.Equal(["a", "b", "c", "terminal"], seen);
    }

    [Fact]
    public async Task Authorize_UnknownTool_IsRefusedWithoutReachingTheNextHandler()
    {
        var (scope, context) = Call(toolName: "nope");

        var e = await Assert.ThrowsAsync<ToolCallException>(() => new AuthorizationHandler().HandleAsync(context, Unreachable, default).AsTask());

        Assert.Equal("unknown_tool", e.Error);
        Assert.Contains("defined: crm", e.Message, StringComparison.Ordinal);
        Assert.Equal("unknown_tool", Failed(scope).Error);
        Assert.Null(context.Tool);
    }

    [Fact]
    public async Task Authorize_AnAgentWithoutTheTool_AndATenantTheToolDoesNotAllow_AreNotAllowed()
    {
        var agent = new AgentDefinition { Name = "writer", Kind = AgentKind.Code, Tools = ["other"] };
        var (_, byAgent) = Call(agent: agent);
        var (_, byTenant) = Call(new ToolDefinition { Name = "crm", Kind = "code", AllowTenants = ["globex"] });

        var agentRefused = await Assert.ThrowsAsync<ToolCallException>(() => new AuthorizationHandler().HandleAsync(byAgent, Unreachable, default).AsTask());
        var tenantRefused = await Assert.ThrowsAsync<ToolCallException>(() => new AuthorizationHandler().HandleAsync(byTenant, Unreachable, default).AsTask());

        Assert.Equal("not_allowed", agentRefused.Error);
        Assert.Contains("agent 'writer' may not call 'crm'", agentRefused.Message, StringComparison.Ordinal);
        Assert.Equal("not_allowed", tenantRefused.Error);
        Assert.Contains("not allowed for tenant 'acme'", tenantRefused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Authorize_AnAllowedCall_GoesOn_WithTheToolFound()
    {
        var (_, context) = Call();

        var result = await new AuthorizationHandler().HandleAsync(context, Answer(Json.Of(new { ok = true })), default);

        Assert.True(result.Value.GetProperty("ok").GetBoolean());
        Assert.Equal("crm", context.Tool!.Name);
    }

    [Fact]
    public async Task ValidateArguments_RedactsSecrets_AndRefusesArgumentsOutsideTheSchema()
    {
        var schema = await Ordo.Schemas.JsonSchemaContract.FromJsonAsync("""{"type":"object","required":["id"],"properties":{"id":{"type":"integer"}}}""", "args.json", _ => null);
        var tool = new ToolDefinition { Name = "crm", Kind = "code", Args = schema };
        var (_, good) = Resolved(tool, Json.Of(new { id = 1, note = "token " + Token }));
        var (scope, bad) = Resolved(tool, Json.Of(new { id = "one" }));
        JsonElement? seen = null;

        await new ArgumentValidationHandler(Redactor()).HandleAsync(good, (c, ct) =>
        {
            seen = c.Args;
            return Answer(Json.Of(new { }))(c, ct);
        }, default);
        var e = await Assert.ThrowsAsync<ToolCallException>(() => new ArgumentValidationHandler(Redactor()).HandleAsync(bad, Unreachable, default).AsTask());

        Assert.DoesNotContain(Token, seen!.Value.GetRawText(), StringComparison.Ordinal);
        Assert.Contains("[REDACTED:CRM_TOKEN]", seen.Value.GetRawText(), StringComparison.Ordinal);
        Assert.Equal("invalid_args", e.Error);
        Assert.Equal("invalid_args", Failed(scope).Error);
    }

    [Fact]
    public async Task GovernanceGuard_ARefusal_StopsTheCallBeforeTheNextHandler()
    {
        var (_, context) = Resolved(Tool());
        var guard = new FakeGuard { Check = c => throw new ToolCallException(c, "crm", "policy_denied", "denied by policy p rule 'r'", retryable: false) };

        var e = await Assert.ThrowsAsync<ToolCallException>(() => new GovernanceGuardHandler(guard).HandleAsync(context, Unreachable, default).AsTask());

        Assert.Equal("policy_denied", e.Error);
        Assert.Equal(context.CallId, guard.Checked);
    }

    [Fact]
    public async Task ExecutorRouting_AKindWithoutExecutor_IsRefused_AndAKnownOneIsChosen()
    {
        var executor = new FakeExecutor("code");
        var handler = new ExecutorRoutingHandler(new Dictionary<string, IToolExecutor> { ["code"] = executor });
        var (scope, mcp) = Resolved(Tool(kind: "mcp"));
        var (_, code) = Resolved(Tool());

        var e = await Assert.ThrowsAsync<ToolCallException>(() => handler.HandleAsync(mcp, Unreachable, default).AsTask());
        await handler.HandleAsync(code, Answer(Json.Of(new { })), default);

        Assert.Equal("unsupported_kind", e.Error);
        Assert.Equal("unsupported_kind", Failed(scope).Error);
        Assert.Same(executor, code.Executor);
    }

    [Fact]
    public async Task RateLimit_RefusesTheCallBeyondTheLimitAndItsLine_AsRetryable()
    {
        using var limits = new ToolRateLimits();
        var handler = new RateLimitHandler(limits);
        var tool = new ToolDefinition { Name = "crm", Kind = "code", RateLimit = new RateLimitSettings(null, PerTenantPerMinute: 1) };
        using var waiting = new CancellationTokenSource();

        await handler.HandleAsync(Resolved(tool).Context, Answer(Json.Of(new { })), default);            // the one permit of the window
        var inLine = handler.HandleAsync(Resolved(tool).Context, Unreachable, waiting.Token).AsTask();  // waits in line (one place)
        var (scope, refused) = Resolved(tool);
        var e = await Assert.ThrowsAsync<ToolCallException>(() => handler.HandleAsync(refused, Unreachable, default).AsTask());

        Assert.Equal("rate_limited", e.Error);
        Assert.True(e.Retryable);
        Assert.Contains("rate limit of 1 calls per minute for tenant 'acme'", Failed(scope).Message, StringComparison.Ordinal);
        Assert.False(inLine.IsCompleted);
        await waiting.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => inLine);
    }

    [Fact]
    public async Task ResponseCache_AHit_IsRecordedAsACachedCall_WithoutReachingTheTool()
    {
        var time = TimeProvider.System;
        var handler = new ResponseCacheHandler(new ToolResultCache(time), new ToolCallIntent(time, null), time);
        var tool = new ToolDefinition { Name = "fx", Kind = "code", Effect = ToolEffect.Read, Cache = TimeSpan.FromMinutes(10) };
        var calls = 0;

        await handler.HandleAsync(Resolved(tool).Context, Answer(Json.Of(new { rate = 1.08 }), () => calls++), default);
        var (scope, second) = Resolved(tool);
        var cached = await handler.HandleAsync(second, Unreachable, default);

        Assert.Equal(1, calls);
        Assert.True(cached.Cached);
        Assert.Equal(1.08, cached.Value.GetProperty("rate").GetDouble());
        Assert.Equal([EventTypes.ToolCallRequested, EventTypes.ToolCallSucceeded], scope.Recorded.Select(e => e.Type));
        Assert.True(((ToolCallSucceededPayload)scope.Recorded[1].TypedPayload!).Cached);
    }

    [Fact]
    public async Task Record_WritesASideEffectsIntentBeforeTheExecutorRuns_ThenItsSuccess()
    {
        var time = TimeProvider.System;
        var handler = new RecordingHandler(new ToolCallIntent(time, null), Redactor(), time);
        var (scope, context) = Resolved(Tool());
        var committedBefore = -1;

        await handler.HandleAsync(context, Answer(Json.Of(new { ok = true }), () => committedBefore = scope.Appended.Count), default);

        Assert.Equal(1, committedBefore);
        var requested = Assert.IsType<ToolCallRequestedPayload>(scope.Appended[0].TypedPayload);
        Assert.Equal(context.IdempotencyKey, requested.IdempotencyKey);
        Assert.Equal(EventTypes.ToolCallSucceeded, Assert.Single(scope.Recorded).Type);
    }

    [Fact]
    public async Task Record_AFailure_IsRecordedRedacted_AndThrownAsAToolCallFailure()
    {
        var time = TimeProvider.System;
        var handler = new RecordingHandler(new ToolCallIntent(time, null), Redactor(), time);
        var (scope, context) = Resolved(Tool());

        var e = await Assert.ThrowsAsync<ToolCallException>(() => handler.HandleAsync(context, (_, _) => throw new ToolExecutionException("http_500", "answered 500: bad token " + Token, retryable: true), default).AsTask());

        Assert.Equal("http_500", e.Error);
        Assert.True(e.Retryable);
        var failed = Failed(scope);
        Assert.Contains("[REDACTED:CRM_TOKEN]", failed.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Token, failed.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Record_InADryRun_ASideEffectIsRecordedAsSkipped_AndNeverRuns()
    {
        var time = TimeProvider.System;
        var handler = new RecordingHandler(new ToolCallIntent(time, null), Redactor(), time);
        var (scope, context) = Resolved(Tool(effect: ToolEffect.Irreversible), dryRun: true);

        var result = await handler.HandleAsync(context, Unreachable, default);

        Assert.True(result.Skipped);
        var succeeded = Assert.IsType<ToolCallSucceededPayload>(Assert.Single(scope.Recorded).TypedPayload);
        Assert.True(succeeded.Skipped);
        Assert.True(succeeded.DryRun);
    }

    [Fact]
    public async Task ResultSizeLimit_ALargerResult_FailsTheCall_NotRetryable()
    {
        var (_, context) = Resolved(new ToolDefinition { Name = "crm", Kind = "code", MaxResultBytes = 100 });

        var e = await Assert.ThrowsAsync<ToolExecutionException>(() => new ResultSizeLimitHandler().HandleAsync(context, Answer(Json.Of(new { text = new string('x', 200) })), default).AsTask());

        Assert.Equal("result_too_large", e.Error);
        Assert.False(e.Retryable);
        Assert.Contains("more than its limit of 100", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ResultRedaction_RemovesSecretValues_FromTheResult()
    {
        var (_, context) = Resolved(Tool());

        var result = await new ResultRedactionHandler(Redactor()).HandleAsync(context, Answer(Json.Of(new { echoed = "Bearer " + Token })), default);

        Assert.Equal("Bearer [REDACTED:CRM_TOKEN]", result.Value.GetProperty("echoed").GetString());
    }

    [Fact]
    public async Task ResultSchema_AResultOutsideTheSchema_FailsTheCall_Retryable()
    {
        var schema = await Ordo.Schemas.JsonSchemaContract.FromJsonAsync("""{"type":"object","required":["status"]}""", "result.json", _ => null);
        var (_, context) = Resolved(new ToolDefinition { Name = "crm", Kind = "code", Result = schema });

        var e = await Assert.ThrowsAsync<ToolExecutionException>(() => new ResultSchemaHandler().HandleAsync(context, Answer(Json.Of(new { other = 1 })), default).AsTask());

        Assert.Equal("invalid_result", e.Error);
        Assert.True(e.Retryable);
    }

    [Fact]
    public async Task Resilience_RetriesARetryableFailure_AndCountsTheAttempts()
    {
        var tool = new ToolDefinition { Name = "crm", Kind = "code", Retry = new ToolRetrySettings(3, TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(1)) };
        var (_, context) = Resolved(tool);
        var runs = 0;

        var result = await new ResilienceHandler(new ToolResilience(TimeProvider.System), TimeProvider.System).HandleAsync(context, (c, ct) =>
            ++runs == 1 ? throw new ToolExecutionException("http_503", "unavailable", retryable: true) : Answer(Json.Of(new { ok = true }))(c, ct), default);

        Assert.Equal(2, runs);
        Assert.Equal(2, context.Attempts);
        Assert.True(result.Value.GetProperty("ok").GetBoolean());
    }

    [Fact]
    public async Task Resilience_DoesNotRetryAFailureThatIsNotRetryable()
    {
        var tool = new ToolDefinition { Name = "crm", Kind = "code", Retry = new ToolRetrySettings(3, TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(1)) };
        var (_, context) = Resolved(tool);

        var e = await Assert.ThrowsAsync<ToolExecutionException>(() => new ResilienceHandler(new ToolResilience(TimeProvider.System), TimeProvider.System)
            .HandleAsync(context, (_, _) => throw new ToolExecutionException("http_404", "not found", retryable: false), default).AsTask());

        Assert.Equal("http_404", e.Error);
        Assert.Equal(1, context.Attempts);
    }

    [Fact]
    public async Task Gateway_AHostsHandler_SeesTheCheckedCall_AndItsRefusalIsRecorded_BeforeAnyIntent()
    {
        var refusing = new Refusing();
        using var gateway = new ToolGateway([new FakeExecutor("code")], handlers: [refusing]);
        var (scope, _) = Call(args: Json.Of(new { id = 7 }));

        var e = await Assert.ThrowsAsync<ToolCallException>(() => gateway.CallAsync(scope, null, "crm", Json.Of(new { id = 7 }), default).AsTask());

        Assert.Equal("held", e.Error);
        Assert.Equal("crm", refusing.SawTool);
        Assert.Equal([EventTypes.ToolCallFailed], scope.Recorded.Select(r => r.Type));
        Assert.Empty(scope.Appended);
    }

    [Fact]
    public async Task Gateway_ACallRunsEveryStep_AndIsRecordedAsBefore()
    {
        var executor = new FakeExecutor("code");
        using var gateway = new ToolGateway([executor]);
        var (scope, _) = Call();

        var result = await gateway.CallAsync(scope, null, "crm", Json.Of(new { id = 7 }), default);

        Assert.Equal(7, result.Value.GetProperty("id").GetInt32());
        Assert.Equal([EventTypes.ToolCallRequested], scope.Appended.Select(e => e.Type));
        var succeeded = Assert.IsType<ToolCallSucceededPayload>(Assert.Single(scope.Recorded).TypedPayload);
        Assert.Equal(1, succeeded.Attempts);
        Assert.Equal(ToolGateway.IdempotencyKey(scope.JobId, scope.Step, 1), executor.Keys.Single());
    }

    private sealed class Tracing(string name, List<string> seen) : IToolCallHandler
    {
        public ValueTask<ToolCallResult> HandleAsync(ToolCallContext context, ToolCallDelegate next, CancellationToken cancellationToken)
        {
            seen.Add(name);
            return next(context, cancellationToken);
        }
    }

    private sealed class Refusing : IToolCallHandler
    {
        public string? SawTool { get; private set; }

        public ValueTask<ToolCallResult> HandleAsync(ToolCallContext context, ToolCallDelegate next, CancellationToken cancellationToken)
        {
            SawTool = context.Tool?.Name;
            throw context.Refuse("held", "held by the host");
        }
    }

    private sealed class FakeGuard : IToolCallGuard
    {
        public Action<string>? Check { get; init; }
        public string? Checked { get; private set; }

        public ValueTask CheckAsync(IToolCallScope scope, AgentDefinition? agent, ToolDefinition tool, JsonElement args, string callId, int callIndex, CancellationToken cancellationToken)
        {
            Checked = callId;
            Check?.Invoke(callId);
            return ValueTask.CompletedTask;
        }

        public ValueTask RecordIntentAsync(IToolCallScope scope, AgentDefinition? agent, ToolDefinition tool, NewEvent requested, string callId, CancellationToken cancellationToken)
        {
            scope.Record(requested);
            return ValueTask.CompletedTask;
        }
    }

    private sealed class FakeExecutor(string kind) : IToolExecutor
    {
        public List<string> Keys { get; } = [];
        public string Kind => kind;

        public ValueTask<JsonElement> ExecuteAsync(ToolInvocation invocation, CancellationToken cancellationToken)
        {
            Keys.Add(invocation.IdempotencyKey);
            return ValueTask.FromResult(invocation.Args);
        }
    }

    /// <summary>A step that collects what it records and commits.</summary>
    private sealed class FakeScope(ProjectDefinition project, string tenant, bool dryRun) : IToolCallScope
    {
        private int _calls;

        public List<NewEvent> Recorded { get; } = [];
        public List<NewEvent> Appended { get; } = [];
        public JobId JobId { get; } = new("job-1");
        public string Tenant => tenant;
        public StepRef Step { get; } = new("call", 1, 1);
        public JobState State => throw new NotSupportedException();
        public WorkflowDefinition Workflow => throw new NotSupportedException();
        public ProjectDefinition Project => project;
        public bool DryRun => dryRun;
        public IReadOnlyList<NewEvent> Events => Recorded;

        public int NextCallIndex() => _calls++;

        public void Record(NewEvent e) => Recorded.Add(e);

        public ValueTask AppendNowAsync(NewEvent e, CancellationToken cancellationToken)
        {
            Appended.Add(e);
            return ValueTask.CompletedTask;
        }

        public ValueTask<TRefusal?> AppendNowUnlessAsync<TRefusal>(NewEvent e, Func<JobState, TRefusal?> refusal, CancellationToken cancellationToken) where TRefusal : class
            => throw new NotSupportedException();

        public void Interrupt(StepInterrupt interrupt) => throw new NotSupportedException();
    }
}
