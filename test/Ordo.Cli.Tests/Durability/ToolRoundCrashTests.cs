using System.Text.Json;
using Ordo.Cli.Tests.TestSupport;
using Ordo.TestServers;

namespace Ordo.Cli.Tests.Durability;

/// <summary>
/// A tool-using agent's process killed with SIGKILL in the middle of a round of tool calls: the step run again replays
/// the model's recorded answer and the calls that finished, and repeats only the call whose outcome was not recorded,
/// with the same idempotency key. The model is not asked again (it might ask for other calls), and no effect repeats.
/// </summary>
public sealed class ToolRoundCrashTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    /// <summary>
    /// Runs the workflow in a real <c>ordo run</c>, kills it with SIGKILL once <paramref name="reached"/> counts the first
    /// request it waits for, then runs <c>ordo resume</c> to the end. Returns the job.
    /// </summary>
    private static async Task<string> RunKilledThenResumedAsync(Workspace w, string workflow, Func<int> reached)
    {
        string job;
        using (var run = OrdoProcess.Start(w.Root, "run", workflow, "--db", w.Db))
        {
            Assert.True(await run.WaitForOutputAsync(l => l.Count > 0, Patience), "ordo run printed nothing\n" + run.Err);
            job = run.OutLines[0]["ordo: running job ".Length..].Split(' ')[0];
            var deadline = DateTime.UtcNow + Patience;
            while (reached() == 0 && DateTime.UtcNow < deadline) await Task.Delay(20);
            Assert.Equal(1, reached());
            run.Kill();
        }

        var resume = await OrdoProcess.RunAsync(w.Root, Patience, "resume", job, "--db", w.Db, "--json");
        Assert.True(resume.ExitCode == 0, resume.ToString());
        return job;
    }

    [Fact]
    public async Task Sigkill_InAToolRound_ResumeReplaysTheAnswerAndTheFinishedCalls_AndRepeatsOnlyTheUnfinishedOne()
    {
        var firstRounds = 0;
        await using var model = await LoopbackServer.StartAsync((ctx, req) =>
        {
            var body = JsonDocument.Parse(req.Body).RootElement;
            var results = body.GetProperty("messages").EnumerateArray().Count(m => m.GetProperty("role").GetString() == "tool");
            object message;
            if (results == 0)
            {
                // A model asked again would ask for other calls: the run after the crash must not ask it.
                var n = Interlocked.Increment(ref firstRounds);
                message = new
                {
                    role = "assistant", content = (string?)null,
                    tool_calls = new[]
                    {
                        new { id = "a", type = "function", function = new { name = "crm_note", arguments = JsonSerializer.Serialize(new { id = $"A{n}" }) } },
                        new { id = "b", type = "function", function = new { name = "crm_slow", arguments = JsonSerializer.Serialize(new { id = $"B{n}" }) } },
                    },
                };
            }
            else
            {
                message = new { role = "assistant", content = "{\"done\": true}" };
            }

            return LoopbackServer.JsonAsync(ctx, 200, JsonSerializer.Serialize(new
            {
                id = "x", @object = "chat.completion", created = 1, model = "fake",
                choices = new[] { new { index = 0, message, finish_reason = "stop" } },
                usage = new { prompt_tokens = 10, completion_tokens = 5, total_tokens = 15 },
            }));
        });
        var slowCalls = 0;
        await using var crm = await LoopbackServer.StartAsync(async (ctx, req) =>
        {
            if (req.Path.StartsWith("/slow", StringComparison.Ordinal) && Interlocked.Increment(ref slowCalls) == 1)
            {
                await Task.Delay(TimeSpan.FromSeconds(60), ctx.RequestAborted);
            }

            await LoopbackServer.JsonAsync(ctx, 200, """{"ok": true}""");
        });

        using var w = Workspace.Create();
        w.Write("ordo.yaml", $"models:\n  fast: {{ provider: openai-compatible, model: fake, endpoint: \"{model.Address}v1\" }}\ntools: [tools.yaml]\n");
        w.Write("tools.yaml", $$"""
            tools:
              crm.note: { kind: http, method: POST, url: "{{crm.Address}}note/{id}", effect: write, retry: { max_attempts: 1 } }
              crm.slow: { kind: http, method: POST, url: "{{crm.Address}}slow/{id}", effect: write, timeout: 90s, retry: { max_attempts: 1 } }
            """);
        var workflow = w.Write("agent.yaml", """
            ordo: 1
            workflow: tool-round
            version: 1
            agents:
              bot: { kind: llm, tier: fast, tools: [crm.note, crm.slow] }
            steps:
              - { id: act, agent: bot }
            """);

        await RunKilledThenResumedAsync(w, workflow, () => Volatile.Read(ref slowCalls));

        Assert.Equal(1, firstRounds);
        Assert.Equal(2, model.Requests.Count);
        var notes = crm.Requests.Where(r => r.Path.StartsWith("/note", StringComparison.Ordinal)).ToList();
        var slow = crm.Requests.Where(r => r.Path.StartsWith("/slow", StringComparison.Ordinal)).ToList();
        Assert.Equal(["/note/A1"], notes.Select(r => r.Path));
        Assert.Equal(["/slow/B1", "/slow/B1"], slow.Select(r => r.Path));
        Assert.Equal(slow[0].IdempotencyKey, slow[1].IdempotencyKey);
        Assert.NotEqual(notes[0].IdempotencyKey, slow[0].IdempotencyKey);
    }

    [Fact]
    public async Task Sigkill_DuringTheNextModelCall_TheRoundsFinishedCallsAreNotRepeated_AndRepeatedCallsKeepTheirKeys()
    {
        var secondRounds = 0;
        await using var model = await LoopbackServer.StartAsync(async (ctx, req) =>
        {
            var body = JsonDocument.Parse(req.Body).RootElement;
            var results = body.GetProperty("messages").EnumerateArray().Count(m => m.GetProperty("role").GetString() == "tool");
            object message;
            if (results == 0)
            {
                // The same call twice in one answer: two keys, the second with ".1".
                var call = new { name = "crm_note", arguments = JsonSerializer.Serialize(new { id = "A" }) };
                message = new { role = "assistant", content = (string?)null, tool_calls = new[] { new { id = "a", type = "function", function = call }, new { id = "b", type = "function", function = call } } };
            }
            else
            {
                if (Interlocked.Increment(ref secondRounds) == 1) await Task.Delay(TimeSpan.FromSeconds(60), ctx.RequestAborted);
                message = new { role = "assistant", content = "{\"done\": true}" };
            }

            await LoopbackServer.JsonAsync(ctx, 200, JsonSerializer.Serialize(new
            {
                id = "x", @object = "chat.completion", created = 1, model = "fake",
                choices = new[] { new { index = 0, message, finish_reason = "stop" } },
                usage = new { prompt_tokens = 10, completion_tokens = 5, total_tokens = 15 },
            }));
        });
        await using var crm = await LoopbackServer.StartAsync((ctx, req) => LoopbackServer.JsonAsync(ctx, 200, """{"ok": true}"""));

        using var w = Workspace.Create();
        w.Write("ordo.yaml", $"models:\n  fast: {{ provider: openai-compatible, model: fake, endpoint: \"{model.Address}v1\", timeout: 90s }}\ntools: [tools.yaml]\n");
        w.Write("tools.yaml", $$"""
            tools:
              crm.note: { kind: http, method: POST, url: "{{crm.Address}}note/{id}", effect: write, retry: { max_attempts: 1 } }
            """);
        var workflow = w.Write("agent.yaml", """
            ordo: 1
            workflow: tool-round
            version: 1
            agents:
              bot: { kind: llm, tier: fast, tools: [crm.note] }
            steps:
              - { id: act, agent: bot }
            """);

        var job = await RunKilledThenResumedAsync(w, workflow, () => Volatile.Read(ref secondRounds));

        // Round 1 was answered once; its two calls ran once each, with their own keys, and were not repeated.
        Assert.Equal(3, model.Requests.Count);
        var notes = crm.Requests.ToList();
        Assert.Equal(2, notes.Count);
        Assert.Equal(notes[0].IdempotencyKey + ".1", notes[1].IdempotencyKey);

        // The log kept the request that the crash interrupted.
        var events = await OrdoProcess.RunAsync(w.Root, Patience, "events", job, "--db", w.Db, "--json");
        Assert.Equal(3, events.Out.Split('\n').Count(l => l.Contains("\"ModelCallRequested\"", StringComparison.Ordinal)));
    }
}
