using Ordo.Engine;
using Ordo.Events;
using Ordo.KillSwitches;
using Ordo.State;
using Ordo.Tests.Governance;
using Ordo.TestServers;

namespace Ordo.Tests.Tools.Mcp;

/// <summary>
/// <c>kind: mcp</c> tools in workflows, through the gateway of a runtime: over stdio and streamable HTTP, under a timeout,
/// and behind a kill switch.
/// </summary>
public sealed class McpWorkflowTests
{
    private static void WriteProject(GovernanceHarness h, string servers, string tools, string steps, string policies = "")
    {
        h.Write("ordo.yaml", $"tools: [tools.yaml]\nmcp_servers:\n{servers}\n" + (policies.Length > 0 ? "policies: [policies.yaml]\n" : ""));
        if (policies.Length > 0) h.Write("policies.yaml", policies);
        h.Write("tools.yaml", "tools:\n" + tools);
        h.Write("workflow.yaml", $"ordo: 1\nworkflow: mcp-flow\nversion: 1\nsteps:\n{steps}");
    }

    private static string Stdio(GovernanceHarness h) => $"  test: {{ command: {McpTestServers.Yaml(McpTestServers.StdioCommand)}, env: {{ MCP_TEST_LOG: \"{Path.Combine(h.Dir, "calls.log")}\", MCP_TEST_KEYS: \"{Path.Combine(h.Dir, "keys.log")}\" }} }}";

    private static IReadOnlyList<string> Calls(GovernanceHarness h) => File.Exists(Path.Combine(h.Dir, "calls.log")) ? File.ReadAllLines(Path.Combine(h.Dir, "calls.log")) : [];

    [Fact]
    public async Task StdioTool_InAWorkflow_CompletesWithTheResultInToolCallSucceeded()
    {
        await using var h = new GovernanceHarness();
        WriteProject(h, Stdio(h),
            "  docs.echo: { kind: mcp, server: test, tool: echo, effect: read }\n",
            "  - { id: call, tool: docs.echo, args: { message: \"${ input.word }\" } }\n");
        var state = await h.RunAsync(await h.LoadAsync(), new { word = "hello" });
        Assert.Equal(JobStatus.Completed, state.Status);
        var ok = (await h.EventsAsync(state.JobId)).Single(e => e.Type == EventTypes.ToolCallSucceeded).GetPayload<ToolCallSucceededPayload>();
        Assert.Equal("hello", ok.Result!.Value.GetProperty("message").GetString());
        Assert.Equal(1, h.Runtime.McpServers.SessionsStarted);

        // The call's idempotency key reached the server in the request's _meta.
        var key = (await h.EventsAsync(state.JobId)).Single(e => e.Type == EventTypes.ToolCallRequested).GetPayload<ToolCallRequestedPayload>().IdempotencyKey;
        Assert.Equal([$"echo {key}"], File.ReadAllLines(Path.Combine(h.Dir, "keys.log")));
    }

    [Fact]
    public async Task AnLlmAgent_IsOfferedAnMcpTool_WithTheServersSchema_AndItsCallRunsThroughTheGateway()
    {
        var bodies = new List<System.Text.Json.JsonElement>();
        await using var model = await LoopbackServer.StartAsync((ctx, req) =>
        {
            var body = System.Text.Json.JsonDocument.Parse(req.Body).RootElement.Clone();
            lock (bodies) bodies.Add(body);
            var toolMessage = body.GetProperty("messages").EnumerateArray().FirstOrDefault(m => m.GetProperty("role").GetString() == "tool");
            object message = toolMessage.ValueKind == System.Text.Json.JsonValueKind.Undefined
                ? new { role = "assistant", content = (string?)null, tool_calls = new[] { new { id = "c1", type = "function", function = new { name = "docs_echo", arguments = "{\"message\":\"from the model\"}" } } } }
                : new { role = "assistant", content = "{\"said\": " + System.Text.Json.JsonSerializer.Serialize(toolMessage.GetProperty("content").GetString()) + "}" };
            return LoopbackServer.JsonAsync(ctx, 200, System.Text.Json.JsonSerializer.Serialize(new
            {
                id = "x", @object = "chat.completion", created = 1, model = "fake",
                choices = new[] { new { index = 0, message, finish_reason = "stop" } },
                usage = new { prompt_tokens = 5, completion_tokens = 5, total_tokens = 10 },
            }));
        });
        await using var h = new GovernanceHarness();
        h.Write("ordo.yaml", $"models:\n  fast: {{ provider: openai-compatible, model: fake, endpoint: \"{model.Address}v1\" }}\ntools: [tools.yaml]\nmcp_servers:\n{Stdio(h)}\n");
        h.Write("tools.yaml", "tools:\n  docs.echo: { kind: mcp, server: test, tool: echo, effect: read }\n");
        h.Write("workflow.yaml", "ordo: 1\nworkflow: mcp-agent\nversion: 1\nagents:\n  asker: { kind: llm, tier: fast, tools: [docs.echo] }\nsteps:\n  - { id: ask, agent: asker, retry: { max_attempts: 1 } }\n");
        var state = await h.RunAsync(await h.LoadAsync());

        Assert.True(state.Status == JobStatus.Completed, state.Reason);
        var function = bodies[0].GetProperty("tools")[0].GetProperty("function");
        Assert.Equal("docs_echo", function.GetProperty("name").GetString());
        Assert.Equal("Returns its arguments as structured content.", function.GetProperty("description").GetString());
        Assert.Equal("message", function.GetProperty("parameters").GetProperty("required")[0].GetString());
        Assert.Contains("call echo {\"message\":\"from the model\"}", Calls(h));
        var events = await h.EventsAsync(state.JobId);
        Assert.Equal("asker@1", events.Single(e => e.Type == EventTypes.ToolCallRequested).Agent);
        Assert.Equal("from the model", events.Single(e => e.Type == EventTypes.ToolCallSucceeded).GetPayload<ToolCallSucceededPayload>().Result!.Value.GetProperty("message").GetString());
    }

    [Fact]
    public async Task HttpTool_InAWorkflow_CompletesOverStreamableHttp()
    {
        await using var server = await McpTestServers.StartHttpAsync();
        await using var h = new GovernanceHarness();
        WriteProject(h, $"  remote: {{ url: \"{server.Url}\" }}",
            "  remote.echo: { kind: mcp, server: remote, tool: echo, effect: read }\n  remote.text: { kind: mcp, server: remote, tool: text, effect: read }\n",
            "  - { id: call, tool: remote.echo, args: { message: over-http }, next: text }\n  - { id: text, tool: remote.text, args: { value: plain } }\n");
        var state = await h.RunAsync(await h.LoadAsync());
        Assert.True(state.Status == JobStatus.Completed, state.Reason);
        var results = (await h.EventsAsync(state.JobId)).Where(e => e.Type == EventTypes.ToolCallSucceeded).Select(e => e.GetPayload<ToolCallSucceededPayload>().Result!.Value.GetRawText()).ToList();
        Assert.Equal(["""{"message":"over-http"}""", """{"text":"plain"}"""], results);
    }

    [Fact]
    public async Task SlowTool_PastItsTimeout_FailsAsTimeout_AndTheServerIsToldToStop()
    {
        await using var h = new GovernanceHarness();
        WriteProject(h, Stdio(h),
            "  docs.slow: { kind: mcp, server: test, tool: slow, effect: read, timeout: 2s, retry: { max_attempts: 1 } }\n",
            "  - { id: call, tool: docs.slow, args: { ms: 60000 } }\n");
        var state = await h.RunAsync(await h.LoadAsync());
        Assert.Equal(JobStatus.Failed, state.Status);
        var failed = (await h.EventsAsync(state.JobId)).First(e => e.Type == EventTypes.ToolCallFailed).GetPayload<ToolCallFailedPayload>();
        Assert.Equal("timeout", failed.Error);
        Assert.True(await McpToolExecutorTests.WaitForAsync(() => Calls(h).Contains("cancelled slow")), string.Join("\n", Calls(h)));
    }

    [Fact]
    public async Task KillSwitch_OnAnMcpTool_StopsTheCallBeforeItIsSent()
    {
        await using var h = new GovernanceHarness();
        WriteProject(h, Stdio(h),
            "  docs.echo: { kind: mcp, server: test, tool: echo, effect: read }\n",
            "  - { id: call, tool: docs.echo, args: { message: never } }\n",
            policies: "policy: p\nversion: 1\nrules: []\n");
        await h.Store.SetKillSwitchAsync(new KillSwitch("tool:docs.*", "docs server compromised", "ops", DateTimeOffset.UtcNow));
        var state = await h.RunAsync(await h.LoadAsync());
        Assert.Equal(JobStatus.Cancelled, state.Status);
        Assert.Contains("docs server compromised", state.Reason);
        Assert.Empty(Calls(h));
        // Not even started: the switch is checked before the executor runs.
        Assert.Equal(0, h.Runtime.McpServers.SessionsStarted);
        Assert.DoesNotContain(await h.EventsAsync(state.JobId), e => e.Type == EventTypes.ToolCallSucceeded);
    }

    [Fact]
    public async Task ErrorResult_FailsTheStep_WithTheServersMessage()
    {
        await using var h = new GovernanceHarness();
        WriteProject(h, Stdio(h),
            "  docs.fail: { kind: mcp, server: test, tool: fail, effect: read }\n",
            "  - { id: call, tool: docs.fail, args: { reason: quota } }\n");
        var state = await h.RunAsync(await h.LoadAsync());
        Assert.Equal(JobStatus.Failed, state.Status);
        var failed = (await h.EventsAsync(state.JobId)).First(e => e.Type == EventTypes.ToolCallFailed).GetPayload<ToolCallFailedPayload>();
        Assert.Equal("mcp_tool_error", failed.Error);
        Assert.Contains("it failed: quota", failed.Message, StringComparison.Ordinal);
        Assert.False(failed.Retryable);
    }
}
