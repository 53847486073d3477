using System.Text.Json;
using Ordo.Events;
using Ordo.State;
using Ordo.Tests.Governance;
using Ordo.TestServers;

namespace Ordo.Tests.Agents;

/// <summary>
/// An <c>llm</c> agent with <c>tools:</c> offers them to its model; every call the model asks for runs through the
/// gateway (allowlist, policy, kill switch, budget, events) and its result, or its refusal, goes back to the model.
/// </summary>
public sealed class ToolUsingAgentTests
{
    private const string Tools = """
        tools:
          tickets.lookup:
            kind: code
            effect: read
            description: Looks a ticket up by id.
            args: { type: object, required: [id], properties: { id: { type: string } } }
          tickets.close: { kind: code, effect: write }
        """;

    private static string Workflow(string extra = "") => $$"""
        ordo: 1
        workflow: triage
        version: 1
        artifacts:
          routing: { schema: { type: object, required: [queue], properties: { queue: { type: string } } } }
        agents:
          triager: { kind: llm, tier: fast, output: routing, tools: [tickets.lookup]{{extra}} }
        steps:
          - { id: triage, agent: triager, retry: { max_attempts: 1 } }
        """;

    private static async Task<(GovernanceHarness H, Func<int> Calls)> ScriptedAsync(string fixtures, string? policies = null, string agentExtra = "")
    {
        var calls = 0;
        var h = new GovernanceHarness();
        h.Write("ordo.yaml", "models:\n  fast: { provider: scripted, fixtures: responses.yaml }\ntools: [tools.yaml]\n" + (policies is null ? "" : "policies: [policies.yaml]\n"));
        h.Write("tools.yaml", Tools);
        if (policies is not null) h.Write("policies.yaml", policies);
        h.Write("responses.yaml", fixtures);
        h.Write("workflow.yaml", Workflow(agentExtra));
        h.AddCodeTool("tickets.lookup", inv =>
        {
            Interlocked.Increment(ref calls);
            return Json.Of(new { id = inv.Args.GetProperty("id").GetString(), plan = "pro" });
        });
        h.AddCodeTool("tickets.close", inv =>
        {
            Interlocked.Increment(ref calls);
            return Json.Of(new { closed = true });
        });
        await Task.CompletedTask;
        return (h, () => Volatile.Read(ref calls));
    }

    [Fact]
    public async Task ScriptedAgent_AsksForATool_ThenAnswersFromItsResult_AllThroughTheGatewayAndRecorded()
    {
        var (h, calls) = await ScriptedAsync("""
            responses:
              - { agent: triager, round: 1, tool_calls: [ { tool: tickets.lookup, args: { id: "T-9" } } ], usage: { input_tokens: 10, output_tokens: 5 } }
              - { agent: triager, round: 2, when: "tool_results[0].result.plan == 'pro' && tool_results[0].tool == 'tickets.lookup'", content: '{"queue": "priority"}' }
              - { agent: triager, round: 2, content: '{"queue": "billing"}' }
            """);
        await using var _ = h;
        var state = await h.RunAsync(await h.LoadAsync());

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("priority", state.Artifacts["routing"].Latest!.Value.GetProperty("queue").GetString());
        Assert.Equal(1, calls());
        var events = await h.EventsAsync(state.JobId);
        var requested = events.Where(e => e.Type == EventTypes.ModelCallRequested).Select(e => e.GetPayload<ModelCallRequestedPayload>()).ToList();
        Assert.Equal([1, 2], requested.Select(r => r.Round ?? 0));
        Assert.All(requested, r => Assert.StartsWith("sha256:", r.RequestHash, StringComparison.Ordinal));
        Assert.NotEqual(requested[0].RequestHash, requested[1].RequestHash);
        var answers = events.Where(e => e.Type == EventTypes.ModelCallSucceeded).Select(e => e.GetPayload<ModelCallSucceededPayload>()).ToList();
        var asked = Assert.Single(answers[0].ToolCalls!);
        Assert.Equal(("tickets.lookup", "T-9"), (asked.Tool, asked.Args.GetProperty("id").GetString()));
        Assert.Null(answers[1].ToolCalls);

        // The call is the gateway's: requested with the agent and an idempotency key, succeeded with the result.
        var call = events.Single(e => e.Type == EventTypes.ToolCallRequested);
        Assert.Equal("triager@1", call.Agent);
        Assert.Equal("tickets.lookup", call.GetPayload<ToolCallRequestedPayload>().Tool);
        Assert.Contains(events, e => e.Type == EventTypes.ToolCallSucceeded);
        var order = events.Select(e => e.Type).Where(t => t is EventTypes.ModelCallSucceeded or EventTypes.ToolCallRequested or EventTypes.ToolCallSucceeded).ToList();
        Assert.Equal([EventTypes.ModelCallSucceeded, EventTypes.ToolCallRequested, EventTypes.ToolCallSucceeded, EventTypes.ModelCallSucceeded], order);
        Assert.Equal(1, state.Usage.ToolCalls);
    }

    [Fact]
    public async Task ADenyPolicy_StopsTheModelsCall_AndTheModelIsToldTheRefusal()
    {
        var (h, calls) = await ScriptedAsync("""
            responses:
              - { agent: triager, round: 1, tool_calls: [ { tool: tickets.lookup, args: { id: "T-9" } } ] }
              - { agent: triager, round: 2, when: "tool_results[0].result.error == 'policy_denied'", content: '{"queue": "manual"}' }
            """, policies: """
            policy: p
            version: 1
            rules:
              - { id: no-lookups, on: tool_call, when: "tool.name == 'tickets.lookup'", effect: deny, reason: "lookups are off" }
            """);
        await using var _ = h;
        var state = await h.RunAsync(await h.LoadAsync());

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("manual", state.Artifacts["routing"].Latest!.Value.GetProperty("queue").GetString());
        Assert.Equal(0, calls());
        var failed = (await h.EventsAsync(state.JobId)).Single(e => e.Type == EventTypes.ToolCallFailed).GetPayload<ToolCallFailedPayload>();
        Assert.Equal("policy_denied", failed.Error);
        Assert.Contains("lookups are off", failed.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AKillSwitchOnTheTool_StopsTheCallBeforeItRuns_AndTheModelIsTold()
    {
        var (h, calls) = await ScriptedAsync("""
            responses:
              - { agent: triager, round: 1, tool_calls: [ { tool: tickets.lookup, args: { id: "T-9" } } ] }
              - { agent: triager, round: 2, when: "tool_results[0].result.error == 'killed'", content: '{"queue": "manual"}' }
            """, policies: "policy: p\nversion: 1\nrules: []\nkill_switches: [ { tool: \"tickets.*\" } ]\n");
        await using var _ = h;
        var state = await h.RunAsync(await h.LoadAsync());

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal(0, calls());
        var events = await h.EventsAsync(state.JobId);
        Assert.Contains(events, e => e.Type == EventTypes.KillSwitchTriggered);
        Assert.Equal("killed", events.Single(e => e.Type == EventTypes.ToolCallFailed).GetPayload<ToolCallFailedPayload>().Error);
        Assert.DoesNotContain(events, e => e.Type == EventTypes.ToolCallRequested);
    }

    [Fact]
    public async Task AToolOutsideTheAgentsList_IsRefused_AndTheModelIsTold()
    {
        var (h, calls) = await ScriptedAsync("""
            responses:
              - { agent: triager, round: 1, tool_calls: [ { tool: tickets.close, args: { id: "T-9" } }, { tool: nowhere.tool } ] }
              - { agent: triager, round: 2, when: "tool_results.length == 2 && tool_results.every(r => r.result.error == 'not_allowed' || r.result.error == 'unknown_tool')", content: '{"queue": "manual"}' }
            """);
        await using var _ = h;
        var state = await h.RunAsync(await h.LoadAsync());

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal(0, calls());
        Assert.Equal(["not_allowed", "unknown_tool"], (await h.EventsAsync(state.JobId)).Where(e => e.Type == EventTypes.ToolCallFailed).Select(e => e.GetPayload<ToolCallFailedPayload>().Error));
    }

    [Fact]
    public async Task ACallThatNeedsApproval_PausesTheStep_AndAfterApprovalTheRecordedAnswerIsReplayed_NotAskedAgain()
    {
        var firstRounds = 0;
        await using var server = await LoopbackServer.StartAsync((ctx, req) =>
        {
            var body = JsonDocument.Parse(req.Body).RootElement;
            var answered = body.GetProperty("messages").EnumerateArray().Any(m => m.GetProperty("role").GetString() == "tool");
            object message = answered
                ? new { role = "assistant", content = "{\"queue\": \"closed\"}" }
                : new
                {
                    role = "assistant", content = (string?)null,
                    // Asked again, a model may ask for another call: after the approval it must not be asked again.
                    tool_calls = new[] { new { id = "c", type = "function", function = new { name = "tickets_close", arguments = JsonSerializer.Serialize(new { id = $"T-{Interlocked.Increment(ref firstRounds)}" }) } } },
                };
            return LoopbackServer.JsonAsync(ctx, 200, JsonSerializer.Serialize(new
            {
                id = "x", @object = "chat.completion", created = 1, model = "fake",
                choices = new[] { new { index = 0, message, finish_reason = "stop" } },
                usage = new { prompt_tokens = 10, completion_tokens = 5, total_tokens = 15 },
            }));
        });
        var closed = new List<string>();
        await using var h = new GovernanceHarness();
        h.Write("ordo.yaml", $"models:\n  fast: {{ provider: openai-compatible, model: fake, endpoint: \"{server.Address}v1\" }}\ntools: [tools.yaml]\npolicies: [policies.yaml]\n");
        h.Write("tools.yaml", Tools);
        h.Write("policies.yaml", """
            policy: p
            version: 1
            rules:
              - { id: closing-needs-a-human, on: tool_call, when: "tool.name == 'tickets.close'", effect: require_approval, approval: { role: approver } }
            """);
        h.Write("workflow.yaml", Workflow().Replace("tools: [tickets.lookup]", "tools: [tickets.close]", StringComparison.Ordinal));
        h.AddCodeTool("tickets.lookup", inv => Json.Of(new { plan = "pro" }));
        h.AddCodeTool("tickets.close", inv =>
        {
            lock (closed) closed.Add(inv.Args.GetProperty("id").GetString()!);
            return Json.Of(new { closed = true });
        });
        var state = await h.RunAsync(await h.LoadAsync(), submitter: "alice");
        Assert.Equal(JobStatus.WaitingApproval, state.Status);
        Assert.Empty(closed);

        var approval = Assert.Single(state.Approvals.Values, a => a.IsPending);
        await h.Runtime.DecideAsync(state.JobId, approval.Id, "bob", approve: true, "fine");
        state = await h.ContinueAsync(state.JobId);

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal(1, firstRounds);
        Assert.Equal(["T-1"], closed);
    }

    [Fact]
    public async Task AModelThatKeepsAskingForTools_IsStoppedAfterMaxToolRounds()
    {
        var (h, calls) = await ScriptedAsync("""
            responses:
              - { agent: triager, tool_calls: [ { tool: tickets.lookup, args: { id: "T-9" } } ] }
            """, agentExtra: ", max_tool_rounds: 3");
        await using var _ = h;
        var state = await h.RunAsync(await h.LoadAsync());

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Equal(3, calls());
        var events = await h.EventsAsync(state.JobId);
        Assert.Equal(4, events.Count(e => e.Type == EventTypes.ModelCallSucceeded));
        var failed = events.Single(e => e.Type == EventTypes.StepFailed).GetPayload<StepFailedPayload>();
        Assert.Equal("tool_rounds_exceeded", failed.Error);
        Assert.Contains("after 3 rounds", failed.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OpenAiCompatibleServer_TwoRoundsOfToolCalling_ThroughTheGateway()
    {
        var bodies = new List<JsonElement>();
        await using var server = await LoopbackServer.StartAsync((ctx, req) =>
        {
            var body = JsonDocument.Parse(req.Body).RootElement.Clone();
            lock (bodies) bodies.Add(body);
            var hasToolResult = body.GetProperty("messages").EnumerateArray().Any(m => m.GetProperty("role").GetString() == "tool");
            object message = hasToolResult
                ? new { role = "assistant", content = "{\"queue\": \"priority\"}" }
                : new
                {
                    role = "assistant",
                    content = (string?)null,
                    tool_calls = new[] { new { id = "call_1", type = "function", function = new { name = "tickets_lookup", arguments = "{\"id\":\"T-9\"}" } } },
                };
            return LoopbackServer.JsonAsync(ctx, 200, JsonSerializer.Serialize(new
            {
                id = "c", @object = "chat.completion", created = 1, model = "fake",
                choices = new[] { new { index = 0, message, finish_reason = hasToolResult ? "stop" : "tool_calls" } },
                usage = new { prompt_tokens = 100, completion_tokens = 20, total_tokens = 120 },
            }));
        });
        var calls = 0;
        await using var h = new GovernanceHarness();
        h.Write("ordo.yaml", $"models:\n  fast: {{ provider: openai-compatible, model: fake, endpoint: \"{server.Address}v1\" }}\ntools: [tools.yaml]\n");
        h.Write("tools.yaml", Tools);
        h.Write("workflow.yaml", Workflow().Replace("tools: [tickets.lookup]", "tools: [tickets.lookup, tickets.close]", StringComparison.Ordinal));
        h.AddCodeTool("tickets.lookup", inv =>
        {
            Interlocked.Increment(ref calls);
            return Json.Of(new { id = inv.Args.GetProperty("id").GetString(), plan = "pro" });
        });
        h.AddCodeTool("tickets.close", inv => Json.Of(new { closed = true }));
        var state = await h.RunAsync(await h.LoadAsync());

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal(1, calls);
        Assert.Equal(2, bodies.Count);

        // A tool without args is offered as taking any object, not as taking none.
        var open = bodies[0].GetProperty("tools").EnumerateArray().Single(t => t.GetProperty("function").GetProperty("name").GetString() == "tickets_close").GetProperty("function").GetProperty("parameters");
        Assert.False(open.TryGetProperty("additionalProperties", out var extra) && extra.ValueKind == JsonValueKind.False, open.GetRawText());

        // The tool is offered as a function under a name providers accept, with its description and args schema.
        var function = bodies[0].GetProperty("tools")[0].GetProperty("function");
        Assert.Equal("tickets_lookup", function.GetProperty("name").GetString());
        Assert.Equal("Looks a ticket up by id.", function.GetProperty("description").GetString());
        Assert.Equal("id", function.GetProperty("parameters").GetProperty("required")[0].GetString());

        // The second request carries the call and its result from the gateway.
        var toolMessage = bodies[1].GetProperty("messages").EnumerateArray().Single(m => m.GetProperty("role").GetString() == "tool");
        Assert.Equal("call_1", toolMessage.GetProperty("tool_call_id").GetString());
        Assert.Contains("\"plan\":\"pro\"", toolMessage.GetProperty("content").GetString()!.Replace(" ", "", StringComparison.Ordinal), StringComparison.Ordinal);
        var events = await h.EventsAsync(state.JobId);
        Assert.Equal(240, state.Usage.Tokens);
        Assert.Equal("tickets.lookup", events.Single(e => e.Type == EventTypes.ModelCallSucceeded && e.GetPayload<ModelCallSucceededPayload>().ToolCalls is not null)
            .GetPayload<ModelCallSucceededPayload>().ToolCalls![0].Tool);
    }
}
