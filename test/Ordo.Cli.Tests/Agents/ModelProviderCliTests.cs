using System.Text.Json;
using Ordo.Cli.Tests.TestSupport;
using Ordo.TestServers;

namespace Ordo.Cli.Tests.Agents;

/// <summary>A real <c>ordo run</c> against model providers on 127.0.0.1: Ollama's native API, and a fallback tier behind an open circuit.</summary>
public sealed class ModelProviderCliTests
{
    private const string Ask = """
        ordo: 1
        workflow: ask
        version: 1
        artifacts:
          reply: { schema: { type: object, required: [answer], properties: { answer: { type: string } } } }
        agents:
          asker: { kind: llm, tier: high, output: reply }
        steps:
          - { id: ask, agent: asker, retry: { max_attempts: 3, backoff: 1ms, max_backoff: 1ms } }
        """;

    [Fact]
    public async Task ARunWhoseTierKeepsFailing_IsAnsweredByItsFallback_OnOllamasNativeApi_WithItsUsageAndCost()
    {
        await using var high = await LoopbackServer.StartAsync((ctx, _) => LoopbackServer.JsonAsync(ctx, 503, """{"error": {"message": "overloaded"}}"""));
        await using var ollama = await LoopbackServer.StartAsync((ctx, _) => LoopbackServer.JsonAsync(ctx, 200,
            // Ollama answers a compact JSON object on one line; its client reads the body line by line, as it does a stream.
            """{"model": "llama3.1", "created_at": "2026-01-01T00:00:00Z", "message": {"role": "assistant", "content": "{\"answer\": \"ok\"}"}, "done": true, "done_reason": "stop", "prompt_eval_count": 600, "eval_count": 400}"""));
        using var w = Workspace.Create();
        w.Write("ordo.yaml", $$"""
            models:
              standard: { provider: ollama, model: llama3.1, endpoint: "{{ollama.Address}}", price: { input_per_1k: 0.01, output_per_1k: 0.02 } }
              high: { provider: openai-compatible, model: big, endpoint: "{{high.Address}}v1", circuit_breaker: { min_calls: 2 } }
              fallback: { high: standard }
            """);
        w.Write("ask.yaml", Ask);

        var run = await CliRunner.RunAsync("run", w.PathOf("ask.yaml"), "--db", w.Db, "--json");
        Assert.True(run.ExitCode == 0, run.ToString());
        var usage = run.Json().GetProperty("usage");
        Assert.Equal(1000, usage.GetProperty("tokens").GetInt32());
        Assert.Equal(0.014m, usage.GetProperty("cost").GetDecimal());
        Assert.Equal(2, high.Requests.Count);
        Assert.Equal("/api/chat", Assert.Single(ollama.Requests).Path);

        var events = await CliRunner.RunAsync("events", run.Json().GetProperty("job_id").GetString()!, "--db", w.Db, "--json");
        Assert.True(events.ExitCode == 0, events.ToString());
        Assert.Contains("\"fallback_from\":\"high\"", events.Out.Replace(" ", "", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.Contains("\"tier\":\"high\"", events.Out.Replace(" ", "", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.Contains("server_error", events.Out, StringComparison.Ordinal);
    }
}
