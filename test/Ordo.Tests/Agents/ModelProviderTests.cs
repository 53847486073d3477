using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Time.Testing;
using Ordo.Agents.Models;
using Ordo.Engine;
using Ordo.Events;
using Ordo.State;
using Ordo.Tests.Governance;
using Ordo.TestServers;

namespace Ordo.Tests.Agents;

/// <summary>
/// Model providers against real HTTP servers on 127.0.0.1 speaking OpenAI's chat-completions wire format and Ollama's
/// native /api/chat: structured output, usage and cost, the error kinds, Retry-After, no hidden retries, the circuit
/// breaker and the fallback tier.
/// </summary>
public sealed class ModelProviderTests
{
    private const string Schema = """{ "type": "object", "required": ["answer"], "properties": { "answer": { "type": "string" } } }""";

    private static string Workflow(string retry = "{ max_attempts: 1 }", string tier = "fast") => $$"""
        ordo: 1
        workflow: ask
        version: 1
        artifacts:
          reply: { schema: {{Schema}} }
        agents:
          asker: { kind: llm, tier: {{tier}}, output: reply }
        steps:
          - { id: ask, agent: asker, retry: {{retry}} }
        """;

    private static string OpenAIAnswer(string content, int prompt = 123, int completion = 45) => JsonSerializer.Serialize(new
    {
        id = "chatcmpl-1", @object = "chat.completion", created = 1, model = "served-model",
        choices = new[] { new { index = 0, message = new { role = "assistant", content }, finish_reason = "stop" } },
        usage = new { prompt_tokens = prompt, completion_tokens = completion, total_tokens = prompt + completion },
    });

    private static string OllamaAnswer(string content, int prompt = 77, int eval = 11) => JsonSerializer.Serialize(new
    {
        model = "llama3.1", created_at = "2026-01-01T00:00:00Z",
        message = new { role = "assistant", content },
        done = true, done_reason = "stop", prompt_eval_count = prompt, eval_count = eval,
    });

    private static async Task<(JobState State, List<EventEnvelope> Events)> RunAsync(GovernanceHarness h)
    {
        var state = await h.RunAsync(await h.LoadAsync());
        return (state, await h.EventsAsync(state.JobId));
    }

    private static T Single<T>(List<EventEnvelope> events, string type) where T : class => events.Single(e => e.Type == type).GetPayload<T>();

    private static List<T> All<T>(List<EventEnvelope> events, string type) where T : class => events.Where(e => e.Type == type).Select(e => e.GetPayload<T>()).ToList();

    [Fact]
    public async Task OpenAI_SendsTheArtifactSchemaAsResponseFormat_AndRecordsTheServersUsageTimesThePrice()
    {
        await using var server = await LoopbackServer.StartAsync((ctx, _) => LoopbackServer.JsonAsync(ctx, 200, OpenAIAnswer("""{"answer":"42"}""")));
        await using var h = new GovernanceHarness(secrets: new() { ["MODEL_KEY"] = "sk-test-abcdef123456" });
        h.Write("ordo.yaml", $$"""
            models:
              fast: { provider: openai, model: gpt-x, endpoint: "{{server.Address}}v1", api_key: "${secret:MODEL_KEY}", price: { input_per_1k: 0.5, output_per_1k: 2 }, max_output_tokens: 300 }
            """);
        h.Write("workflow.yaml", Workflow());
        var (state, events) = await RunAsync(h);

        Assert.Equal(JobStatus.Completed, state.Status);
        var request = Assert.Single(server.Requests);
        Assert.Equal("/v1/chat/completions", request.Path);
        Assert.Equal("Bearer sk-test-abcdef123456", request.Headers["Authorization"]);
        using var body = JsonDocument.Parse(request.Body);
        Assert.Equal("gpt-x", body.RootElement.GetProperty("model").GetString());
        Assert.Equal(300, body.RootElement.GetProperty("max_completion_tokens").GetInt32());
        var format = body.RootElement.GetProperty("response_format");
        Assert.Equal("json_schema", format.GetProperty("type").GetString());
        Assert.Equal("reply", format.GetProperty("json_schema").GetProperty("name").GetString());
        var schema = format.GetProperty("json_schema").GetProperty("schema");
        Assert.Equal("answer", schema.GetProperty("required")[0].GetString());
        Assert.Equal("string", schema.GetProperty("properties").GetProperty("answer").GetProperty("type").GetString());

        var done = Single<ModelCallSucceededPayload>(events, EventTypes.ModelCallSucceeded);
        Assert.Equal((123L, 45L), (done.InputTokens, done.OutputTokens));
        Assert.Equal((123m * 0.5m / 1000m) + (45m * 2m / 1000m), done.Cost);
        Assert.Equal(("fast", "openai", "served-model"), (done.Tier, done.Provider, done.Model));
        Assert.Null(done.FallbackFrom);
        Assert.Equal("42", state.Artifacts["reply"].Latest.Value.GetProperty("answer").GetString());
    }

    [Fact]
    public async Task Ollama_UsesTheNativeChatApi_WithTheSchemaAsFormat_AndRecordsItsEvalCountsTimesThePrice()
    {
        await using var server = await LoopbackServer.StartAsync((ctx, _) => LoopbackServer.JsonAsync(ctx, 200, OllamaAnswer("""{"answer":"native"}""")));
        await using var h = new GovernanceHarness();
        // An endpoint written for Ollama's OpenAI-compatible API (…/v1) names the same server.
        h.Write("ordo.yaml", $$"""
            models:
              fast: { provider: ollama, model: llama3.1, endpoint: "{{server.Address}}v1", price: { input_per_1k: 0.1, output_per_1k: 0.3 }, max_output_tokens: 256 }
            """);
        h.Write("workflow.yaml", Workflow());
        var (state, events) = await RunAsync(h);

        Assert.Equal(JobStatus.Completed, state.Status);
        var request = Assert.Single(server.Requests);
        Assert.Equal("/api/chat", request.Path);
        using var body = JsonDocument.Parse(request.Body);
        Assert.Equal("llama3.1", body.RootElement.GetProperty("model").GetString());
        Assert.False(body.RootElement.GetProperty("stream").GetBoolean());
        var format = body.RootElement.GetProperty("format");
        Assert.Equal(JsonValueKind.Object, format.ValueKind);
        Assert.Equal("answer", format.GetProperty("required")[0].GetString());
        Assert.Equal(256, body.RootElement.GetProperty("options").GetProperty("num_predict").GetInt32());
        Assert.Equal("system", body.RootElement.GetProperty("messages")[0].GetProperty("role").GetString());

        var done = Single<ModelCallSucceededPayload>(events, EventTypes.ModelCallSucceeded);
        Assert.Equal((77L, 11L), (done.InputTokens, done.OutputTokens));
        Assert.Equal((77m * 0.1m / 1000m) + (11m * 0.3m / 1000m), done.Cost);
        Assert.Equal(("fast", "ollama"), (done.Tier, done.Provider));
        Assert.Equal("native", state.Artifacts["reply"].Latest.Value.GetProperty("answer").GetString());
    }

    [Theory]
    [InlineData("openai", false)]
    [InlineData("openai", true)]
    [InlineData("ollama", false)]
    [InlineData("ollama", true)]
    public async Task A429WithRetryAfter_MakesTheNextAttemptWaitAtLeastThatLong(string provider, bool asDate)
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
        var seen = new List<DateTimeOffset>();
        await using var server = await LoopbackServer.StartAsync(async (ctx, _) =>
        {
            DateTimeOffset now;
            lock (seen)
            {
                now = time.GetUtcNow();
                seen.Add(now);
                if (seen.Count > 1) now = DateTimeOffset.MinValue;
            }

            if (now != DateTimeOffset.MinValue)
            {
                ctx.Response.Headers["Retry-After"] = asDate ? (now + TimeSpan.FromSeconds(7)).ToString("r", System.Globalization.CultureInfo.InvariantCulture) : "7";
                await LoopbackServer.JsonAsync(ctx, 429, """{"error": {"message": "slow down"}}""");
                return;
            }

            await LoopbackServer.JsonAsync(ctx, 200, provider == "ollama" ? OllamaAnswer("""{"answer":"later"}""") : OpenAIAnswer("""{"answer":"later"}"""));
        });
        await using var h = new GovernanceHarness(options: new OrdoRuntimeOptions { Workers = 1, TimeProvider = time, PollInterval = TimeSpan.FromMilliseconds(5), KillSwitchRefresh = TimeSpan.Zero });
        h.Write("ordo.yaml", $"models:\n  fast: {{ provider: {(provider == "ollama" ? "ollama" : "openai-compatible")}, model: m, endpoint: \"{server.Address}\" }}\n");
        h.Write("workflow.yaml", Workflow("{ max_attempts: 2, backoff: 10ms, max_backoff: 1m }"));
        var job = await h.Runtime.SubmitAsync(await h.LoadAsync(), null, new SubmitOptions { Submitter = "alice", Tenant = "default" });
        var run = h.Runtime.RunAsync(new RunRequest { RootJobId = job.JobId, UntilIdle = true });

        // The first attempt fails and its retry waits: nothing moves until the clock does.
        var failed = await WaitForAsync(h, job.JobId, EventTypes.StepFailed, run);
        var payload = failed.GetPayload<StepFailedPayload>();
        Assert.Equal(ModelErrors.RateLimited, payload.Error);
        Assert.True(payload.WillRetry);
        Assert.True(payload.RetryDelayMs >= 7000, $"retry delay {payload.RetryDelayMs} ms is shorter than Retry-After");
        var call = Single<ModelCallFailedPayload>(await h.EventsAsync(job.JobId), EventTypes.ModelCallFailed);
        Assert.Equal(7000, call.RetryAfterMs);
        Assert.Contains("HTTP 429", call.Message, StringComparison.Ordinal);
        Assert.Contains("slow down", call.Message, StringComparison.Ordinal);

        time.Advance(TimeSpan.FromMilliseconds(payload.RetryDelayMs!.Value));
        await run.WaitAsync(TimeSpan.FromSeconds(30));
        var state = (await h.Runtime.GetStateAsync(job.JobId))!;
        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal(2, seen.Count);
        Assert.True(seen[1] - seen[0] >= TimeSpan.FromSeconds(7), $"the second request came {seen[1] - seen[0]} after the first");
    }

    [Fact]
    public async Task ServerErrors_OpenTheTiersCircuit_AndItsFallbackTierAnswers_Recorded()
    {
        await using var high = await LoopbackServer.StartAsync((ctx, _) => LoopbackServer.JsonAsync(ctx, 500, """{"error": {"message": "overloaded"}}"""));
        await using var standard = await LoopbackServer.StartAsync((ctx, _) => LoopbackServer.JsonAsync(ctx, 200, OllamaAnswer("""{"answer":"fallback"}""")));
        await using var h = new GovernanceHarness();
        h.Write("ordo.yaml", $$"""
            models:
              standard: { provider: ollama, model: small, endpoint: "{{standard.Address}}", price: { input_per_1k: 1, output_per_1k: 1 } }
              high: { provider: openai-compatible, model: big, endpoint: "{{high.Address}}v1", circuit_breaker: { failure_ratio: 0.5, min_calls: 2, break: 10m } }
              fallback: { high: standard }
            """);
        h.Write("workflow.yaml", Workflow("{ max_attempts: 3, backoff: 1ms, max_backoff: 1ms }", tier: "high"));
        var wf = await h.LoadAsync();
        var state = await h.RunAsync(wf);
        var events = await h.EventsAsync(state.JobId);

        Assert.Equal(JobStatus.Completed, state.Status);
        // One request per attempt: two to the failing tier, which opened its circuit, then the fallback.
        Assert.Equal(2, high.Requests.Count);
        Assert.Single(standard.Requests);
        var failures = All<ModelCallFailedPayload>(events, EventTypes.ModelCallFailed);
        Assert.Equal([ModelErrors.ServerError, ModelErrors.ServerError], failures.Select(f => f.Error));
        Assert.All(failures, f => Assert.Equal("high", f.Tier));
        var change = Single<CircuitStateChangedPayload>(events, EventTypes.CircuitStateChanged);
        Assert.Equal(("high", null, "closed", "open"), (change.Tier, change.Tool, change.From, change.To));
        var requested = All<ModelCallRequestedPayload>(events, EventTypes.ModelCallRequested);
        Assert.Equal([null, null, "high"], requested.Select(r => r.FallbackFrom));
        Assert.Equal(["high", "high", "standard"], requested.Select(r => r.Tier));
        var done = Single<ModelCallSucceededPayload>(events, EventTypes.ModelCallSucceeded);
        Assert.Equal(("standard", "ollama", "high"), (done.Tier, done.Provider, done.FallbackFrom));
        Assert.Equal(77m / 1000m + 11m / 1000m, done.Cost);

        // The circuit is the tier's, for every job of the process: the next job goes to the fallback at once.
        var next = await h.RunAsync(wf);
        Assert.Equal(JobStatus.Completed, next.Status);
        Assert.Equal(2, high.Requests.Count);
        Assert.Equal("high", Single<ModelCallSucceededPayload>(await h.EventsAsync(next.JobId), EventTypes.ModelCallSucceeded).FallbackFrom);
    }

    [Theory]
    [InlineData("openai")]
    [InlineData("ollama")]
    public async Task AProviderThatDoesNotAnswerInTheTiersTimeout_FailsTheAttemptAsTimeout(string provider)
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await LoopbackServer.StartAsync(async (ctx, _) =>
        {
            arrived.TrySetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, ctx.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                // The client gave up, as it should.
            }
        });
        await using var h = new GovernanceHarness(options: new OrdoRuntimeOptions { Workers = 1, TimeProvider = time, PollInterval = TimeSpan.FromMilliseconds(5), KillSwitchRefresh = TimeSpan.Zero });
        h.Write("ordo.yaml", $"models:\n  fast: {{ provider: {(provider == "ollama" ? "ollama" : "openai-compatible")}, model: m, endpoint: \"{server.Address}\", timeout: 5s }}\n");
        h.Write("workflow.yaml", Workflow());
        var job = await h.Runtime.SubmitAsync(await h.LoadAsync(), null, new SubmitOptions { Submitter = "alice", Tenant = "default" });
        var run = h.Runtime.RunAsync(new RunRequest { RootJobId = job.JobId, UntilIdle = true });
        await arrived.Task.WaitAsync(TimeSpan.FromSeconds(30));
        time.Advance(TimeSpan.FromSeconds(5));
        await run.WaitAsync(TimeSpan.FromSeconds(30));

        var events = await h.EventsAsync(job.JobId);
        var call = Single<ModelCallFailedPayload>(events, EventTypes.ModelCallFailed);
        Assert.Equal(ModelErrors.Timeout, call.Error);
        Assert.Contains("no answer within 5s", call.Message, StringComparison.Ordinal);
        var step = Single<StepFailedPayload>(events, EventTypes.StepFailed);
        Assert.Equal((ModelErrors.Timeout, true), (step.Error, step.Retryable));
        Assert.Single(server.Requests);
    }

    [Theory]
    [InlineData("openai", "this is not json")]
    [InlineData("openai", """{"id": "c", "object": "chat.completion", "created": 1, "model": "m", "choices": []}""")]
    [InlineData("ollama", "this is not json")]
    [InlineData("ollama", """{"model": "m", "done": false}""")]
    public async Task AnAnswerThatBreaksTheWireFormat_IsAMalformedResponse_Retryable(string provider, string body)
    {
        await using var server = await LoopbackServer.StartAsync((ctx, _) => LoopbackServer.JsonAsync(ctx, 200, body));
        await using var h = new GovernanceHarness();
        h.Write("ordo.yaml", $"models:\n  fast: {{ provider: {(provider == "ollama" ? "ollama" : "openai-compatible")}, model: m, endpoint: \"{server.Address}\" }}\n");
        h.Write("workflow.yaml", Workflow("{ max_attempts: 2, backoff: 1ms, max_backoff: 1ms }"));
        var (state, events) = await RunAsync(h);

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Equal(2, server.Requests.Count);
        Assert.All(All<ModelCallFailedPayload>(events, EventTypes.ModelCallFailed), f => Assert.Equal(ModelErrors.MalformedResponse, f.Error));
        Assert.All(All<StepFailedPayload>(events, EventTypes.StepFailed), f => Assert.Equal((ModelErrors.MalformedResponse, true), (f.Error, f.Retryable)));
    }

    [Theory]
    [InlineData("openai", 500, ModelErrors.ServerError)]
    [InlineData("openai", 503, ModelErrors.ServerError)]
    [InlineData("ollama", 500, ModelErrors.ServerError)]
    [InlineData("ollama", 502, ModelErrors.ServerError)]
    public async Task AServerError_ReachesTheServerExactlyOncePerStepAttempt(string provider, int status, string kind)
    {
        await using var server = await LoopbackServer.StartAsync((ctx, _) => LoopbackServer.JsonAsync(ctx, status, """{"error": "down for maintenance"}"""));
        await using var h = new GovernanceHarness();
        h.Write("ordo.yaml", $"models:\n  fast: {{ provider: {(provider == "ollama" ? "ollama" : "openai-compatible")}, model: m, endpoint: \"{server.Address}\" }}\n");
        h.Write("workflow.yaml", Workflow("{ max_attempts: 3, backoff: 1ms, max_backoff: 1ms }"));
        var (state, events) = await RunAsync(h);

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Equal(3, server.Requests.Count);
        var failures = All<ModelCallFailedPayload>(events, EventTypes.ModelCallFailed);
        Assert.Equal(3, failures.Count);
        Assert.All(failures, f => Assert.Equal(kind, f.Error));
        Assert.All(failures, f => Assert.Contains($"HTTP {status}", f.Message, StringComparison.Ordinal));
        Assert.All(failures, f => Assert.Contains("down for maintenance", f.Message, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("openai", 401, """{"error": {"message": "invalid api key sk-test-abcdef123456"}}""", "invalid api key [REDACTED:MODEL_KEY]")]
    [InlineData("ollama", 404, """{"error": "model 'nope' not found"}""", "model 'nope' not found")]
    [InlineData("ollama", 400, """{"error": "invalid format"}""", "invalid format")]
    public async Task ARefusedRequest_IsProviderRefused_NotRetried_AndTheMessageHasNoSecret(string provider, int status, string body, string expected)
    {
        await using var server = await LoopbackServer.StartAsync((ctx, _) => LoopbackServer.JsonAsync(ctx, status, body));
        await using var h = new GovernanceHarness(secrets: new() { ["MODEL_KEY"] = "sk-test-abcdef123456" });
        h.Write("ordo.yaml", $"models:\n  fast: {{ provider: {(provider == "ollama" ? "ollama" : "openai-compatible")}, model: nope, endpoint: \"{server.Address}\", api_key: \"${{secret:MODEL_KEY}}\" }}\n");
        h.Write("workflow.yaml", Workflow("{ max_attempts: 3, backoff: 1ms, max_backoff: 1ms }"));
        var (state, events) = await RunAsync(h);

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Single(server.Requests);
        Assert.Equal("Bearer sk-test-abcdef123456", server.Requests[0].Headers["Authorization"]);
        var call = Single<ModelCallFailedPayload>(events, EventTypes.ModelCallFailed);
        Assert.Equal(ModelErrors.ProviderRefused, call.Error);
        Assert.EndsWith($"HTTP {status} {(status switch { 401 => "Unauthorized", 404 => "Not Found", _ => "Bad Request" })}: {expected}", call.Message, StringComparison.Ordinal);
        Assert.False(Single<StepFailedPayload>(events, EventTypes.StepFailed).Retryable);
        Assert.DoesNotContain("sk-test-abcdef123456", string.Join("\n", events.Select(e => e.PayloadText)), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("openai")]
    [InlineData("ollama")]
    public async Task AProviderNobodyListensFor_IsAConnectionError_Retryable(string provider)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        await using var h = new GovernanceHarness();
        h.Write("ordo.yaml", $"models:\n  fast: {{ provider: {(provider == "ollama" ? "ollama" : "openai-compatible")}, model: m, endpoint: \"http://127.0.0.1:{port}/\" }}\n");
        h.Write("workflow.yaml", Workflow("{ max_attempts: 2, backoff: 1ms, max_backoff: 1ms }"));
        var (state, events) = await RunAsync(h);

        Assert.Equal(JobStatus.Failed, state.Status);
        var failures = All<ModelCallFailedPayload>(events, EventTypes.ModelCallFailed);
        Assert.Equal(2, failures.Count);
        Assert.All(failures, f => Assert.Equal(ModelErrors.ConnectionError, f.Error));
        Assert.All(failures, f => Assert.StartsWith("could not reach the provider: ", f.Message, StringComparison.Ordinal));
        Assert.All(All<StepFailedPayload>(events, EventTypes.StepFailed), f => Assert.True(f.Retryable));
    }

    [Fact]
    public async Task ATiersCircuit_OpensOnFailures_SendsCallsToTheFallback_AndIsTriedAgainAfterItsBreak()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var factory = new ModelClientFactory(new Ordo.Expressions.ExpressionEvaluator(), time: time);
        var failing = new ModelTier
        {
            Name = "high", Provider = "scripted", Model = "scripted",
            Fixtures = new ScriptedFixtures { File = "f.yaml", Responses = [new ScriptedResponse { Agent = "a", Error = "server_error", Location = "f.yaml:1:1" }] },
            CircuitBreaker = new Ordo.Tools.CircuitBreakerSettings(0.5, 2, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(30)),
        };
        var spare = new ModelTier { Name = "standard", Provider = "scripted", Model = "scripted", Fixtures = failing.Fixtures };
        var tiers = new Dictionary<string, ModelTier> { ["high"] = failing, ["standard"] = spare };
        var fallback = new Dictionary<string, string> { ["high"] = "standard" };
        var options = new ChatOptions { AdditionalProperties = new() { [ModelCallProperties.Agent] = "a" } };

        for (var i = 0; i < 2; i++)
        {
            var e = await Assert.ThrowsAsync<ModelCallException>(() => factory.GetClient(failing).GetResponseAsync("hi", options));
            Assert.Equal(ModelErrors.ServerError, e.Error);
        }

        Assert.Equal("open", factory.GetCircuit(failing).State);
        Assert.Equal(new ModelRoute(spare, "high"), factory.Route(failing, tiers, fallback));
        var refused = await Assert.ThrowsAsync<ModelCallException>(() => factory.GetClient(failing).GetResponseAsync("hi", options));
        Assert.Equal((ModelErrors.CircuitOpen, true), (refused.Error, refused.Retryable));
        Assert.EndsWith("it may close in 30 s", refused.Message, StringComparison.Ordinal);

        // Part of the break has passed: what is left is said in whole seconds (29.9276 s is 30 s), not as 29927.6ms.
        time.Advance(TimeSpan.FromMilliseconds(72.3974));
        var later = await Assert.ThrowsAsync<ModelCallException>(() => factory.GetClient(failing).GetResponseAsync("hi", options));
        Assert.EndsWith("it may close in 30 s", later.Message, StringComparison.Ordinal);
        time.Advance(TimeSpan.FromSeconds(10));
        later = await Assert.ThrowsAsync<ModelCallException>(() => factory.GetClient(failing).GetResponseAsync("hi", options));
        Assert.EndsWith("it may close in 20 s", later.Message, StringComparison.Ordinal);

        // A tier defined the same way (another job's copy of the definition) shares the circuit.
        var copy = new ModelTier { Name = "high", Provider = "scripted", Model = "scripted", Fixtures = failing.Fixtures, CircuitBreaker = failing.CircuitBreaker };
        Assert.True(factory.GetCircuit(copy).IsOpen);

        time.Advance(TimeSpan.FromSeconds(21));
        Assert.Equal(new ModelRoute(failing, null), factory.Route(failing, tiers, fallback));
    }

    private static async Task<EventEnvelope> WaitForAsync(GovernanceHarness h, JobId job, string type, Task run)
    {
        for (var i = 0; i < 3000; i++)
        {
            var found = (await h.EventsAsync(job)).FirstOrDefault(e => e.Type == type);
            if (found is not null) return found;
            if (run.IsCompleted) await run;
            await Task.Yield();
            await Task.Delay(10);
        }

        throw new TimeoutException($"no {type} event");
    }
}
