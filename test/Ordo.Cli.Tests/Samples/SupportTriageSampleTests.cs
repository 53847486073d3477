using System.Text.Json;
using Ordo.Cli.Tests.TestSupport;
using Ordo.TestServers;

namespace Ordo.Cli.Tests.Samples;

/// <summary>
/// The support-triage sample, one workflow file: offline on its scripted tier, and on a real OpenAI-compatible server
/// (here one on 127.0.0.1) when ORDO_MODEL_ENDPOINT is set; either way the agent looks the ticket up through the gateway.
/// </summary>
public sealed class SupportTriageSampleTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task Offline_TheScriptedTierLooksTheTicketUp_AndRoutesIt()
    {
        using var w = Workspace.WithSample("support-triage");
        var run = await OrdoProcess.RunAsync(w.Root, Patience, new Dictionary<string, string> { ["ORDO_MODEL_ENDPOINT"] = "" },
            "run", "sample/triage.yaml", "--input", "sample/input.json", "--db", w.Db, "--json");

        Assert.True(run.ExitCode == 0, run.ToString());
        var json = run.Json();
        Assert.Equal("completed", json.GetProperty("status").GetString());
        var routing = json.GetProperty("artifacts").GetProperty("routing").GetProperty("value");
        Assert.Equal("high", routing.GetProperty("priority").GetString());
        Assert.Equal(1, json.GetProperty("usage").GetProperty("tool_calls").GetInt32());
    }

    [Fact]
    public async Task WithOrdoModelEndpoint_TheSameWorkflowRunsOnThatServer_WhichCallsTheToolThroughOrdo()
    {
        var bodies = new List<JsonElement>();
        await using var server = await LoopbackServer.StartAsync((ctx, req) =>
        {
            var body = JsonDocument.Parse(req.Body).RootElement.Clone();
            lock (bodies) bodies.Add(body);
            var messages = body.GetProperty("messages").EnumerateArray().ToList();
            var tool = messages.FirstOrDefault(m => m.GetProperty("role").GetString() == "tool");
            object message;
            if (tool.ValueKind == JsonValueKind.Undefined)
            {
                var ticket = JsonDocument.Parse(messages[^1].GetProperty("content").GetString()!).RootElement.GetProperty("ticket_id").GetString();
                var function = body.GetProperty("tools")[0].GetProperty("function").GetProperty("name").GetString();
                message = new { role = "assistant", content = (string?)null, tool_calls = new[] { new { id = "c1", type = "function", function = new { name = function, arguments = JsonSerializer.Serialize(new { id = ticket }) } } } };
            }
            else
            {
                var row = JsonDocument.Parse(tool.GetProperty("content").GetString()!).RootElement.GetProperty("rows")[0];
                message = new { role = "assistant", content = JsonSerializer.Serialize(new { ticket = row.GetProperty("id").GetString(), queue = "billing", priority = "normal", reason = "live: " + row.GetProperty("subject").GetString() }) };
            }

            return LoopbackServer.JsonAsync(ctx, 200, JsonSerializer.Serialize(new
            {
                id = "x", @object = "chat.completion", created = 1, model = "local",
                choices = new[] { new { index = 0, message, finish_reason = "stop" } },
                usage = new { prompt_tokens = 50, completion_tokens = 10, total_tokens = 60 },
            }));
        });
        using var w = Workspace.WithSample("support-triage");
        var run = await OrdoProcess.RunAsync(w.Root, Patience, new Dictionary<string, string> { ["ORDO_MODEL_ENDPOINT"] = server.Address + "v1", ["ORDO_MODEL"] = "qwen-test" },
            "run", "sample/triage.yaml", "--input", "sample/input.json", "--db", w.Db, "--json");

        Assert.True(run.ExitCode == 0, run.ToString());
        var json = run.Json();
        Assert.Equal("live: Invoice charged twice", json.GetProperty("artifacts").GetProperty("routing").GetProperty("value").GetProperty("reason").GetString());
        Assert.Equal(120, json.GetProperty("usage").GetProperty("tokens").GetInt64());
        Assert.Equal(2, bodies.Count);
        Assert.Equal("qwen-test", bodies[0].GetProperty("model").GetString());
        Assert.Equal("tickets_lookup", bodies[0].GetProperty("tools")[0].GetProperty("function").GetProperty("name").GetString());
    }
}
