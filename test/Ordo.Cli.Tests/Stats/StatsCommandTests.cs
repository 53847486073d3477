using System.Text.Json;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Stats;

/// <summary><c>ordo stats</c> against jobs whose figures are counted by hand from their scripted answers and prices.</summary>
public sealed class StatsCommandTests
{
    // Prices: 0.001 per 1k input tokens, 0.002 per 1k output. A wrong answer (100 in, 10 out) costs 0.00012; a right one (200 in, 20 out) 0.00024.
    private const string Config = """
        models:
          fast: { provider: scripted, fixtures: fixtures.yaml, price: { input_per_1k: 0.001, output_per_1k: 0.002 } }
        prompts: prompts/
        """;

    private const string Fixtures = """
        responses:
          - { agent: classifier, when: "input.kind == 'bad'", content: '{"label": 7}', usage: { input_tokens: 100, output_tokens: 10 } }
          - { agent: classifier, attempt: 1, when: "input.kind == 'flaky'", content: '{"label": 7}', usage: { input_tokens: 100, output_tokens: 10 } }
          - { agent: classifier, content: '{"label": "ok"}', usage: { input_tokens: 200, output_tokens: 20 } }
        """;

    private const string Workflow = """
        ordo: 1
        workflow: classify
        version: 3
        artifacts:
          label: { schema: { type: object, required: [label], properties: { label: { type: string } } } }
        agents:
          classifier: { kind: llm, version: 2, tier: fast, prompt: classify, output: label }
        steps:
          - { id: classify, agent: classifier, input: { kind: "${ input.kind }" }, retry: { max_attempts: 2, backoff: 1ms } }
        """;

    [Fact]
    public Task TheFigures_AreThoseCountedByHand() => FiguresAsync(postgres: null);

    [Fact]
    public async Task OnPostgreSql_TheFigures_AreTheSame()
    {
        var pg = Ordo.Postgres.Tests.PostgresTestServer.CreateDatabase("ordo_stats");
        try
        {
            await FiguresAsync(pg);
        }
        finally
        {
            Ordo.Postgres.Tests.PostgresTestServer.DropDatabase(pg);
        }
    }

    private static async Task FiguresAsync(string? postgres)
    {
        using var w = Workspace.Create();
        string[] store = postgres is null ? ["--db", w.Db] : ["--postgres", postgres];
        w.Write("ordo.yaml", Config);
        w.Write("fixtures.yaml", Fixtures);
        w.Write("prompts/classify.md", "Classify the ticket.\n");
        w.Write("classify.yaml", Workflow);
        foreach (var (kind, exit) in new[] { ("good", 0), ("good", 0), ("flaky", 0), ("bad", 3) })
        {
            w.Write("input.json", $"{{\"kind\": \"{kind}\"}}");
            await CliRunner.RunExpectingAsync(exit, ["run", w.PathOf("classify.yaml"), "--input", w.PathOf("input.json"), .. store, "--json"]);
        }

        var stats = await CliRunner.RunExpectingAsync(0, ["stats", .. store, "--json"]);
        var v = Assert.Single(stats.Json().GetProperty("workflows").EnumerateArray());

        // good: 1 attempt, 220 tokens; flaky: a rejected answer retried, then a right one (330 tokens);
        // bad: two rejected answers, the second not retried (220 tokens). 4 jobs, 3 completed, 1 failed.
        Assert.Equal("classify", v.GetProperty("workflow").GetString());
        Assert.Equal(3, v.GetProperty("version").GetInt32());
        Assert.Equal(4, v.GetProperty("jobs").GetInt32());
        Assert.Equal(3, v.GetProperty("completed").GetInt32());
        Assert.Equal(1, v.GetProperty("failed").GetInt32());
        Assert.Equal(0, v.GetProperty("cancelled").GetInt32());
        Assert.Equal(0.75, v.GetProperty("success_rate").GetDouble());
        Assert.Equal(990, v.GetProperty("tokens").GetInt64());
        Assert.Equal(0.00108m, v.GetProperty("cost").GetDecimal());
        Assert.Equal(0.00036m, v.GetProperty("cost_per_success").GetDecimal());
        Assert.Equal(0.5, v.GetProperty("retries_per_job").GetDouble());
        Assert.Equal(0.5, v.GetProperty("gate_rejection_rate").GetDouble());
        Assert.Equal(0, v.GetProperty("escalation_rate").GetDouble());
        Assert.True(v.GetProperty("latency_ms").GetProperty("p50").GetDouble() <= v.GetProperty("latency_ms").GetProperty("p95").GetDouble());
        var agent = Assert.Single(v.GetProperty("agents").EnumerateArray());
        Assert.Equal("classifier@2", agent.GetProperty("agent").GetString());
        Assert.StartsWith("sha256:", agent.GetProperty("prompt_hash").GetString(), StringComparison.Ordinal);
        Assert.Equal(6, agent.GetProperty("calls").GetInt32());
        Assert.Equal(3, agent.GetProperty("failures").GetInt32());
        Assert.Equal(990, agent.GetProperty("tokens").GetInt64());
        Assert.Equal(0.00108m, agent.GetProperty("cost").GetDecimal());

        // A window that ends before the jobs, and another workflow's name, count nothing; bad input exits 2.
        Assert.Empty((await CliRunner.RunExpectingAsync(0, ["stats", .. store, "--json", "--since", "2020-01-01T00:00:00Z", "--workflow", "other"])).Json().GetProperty("workflows").EnumerateArray());
        var human = await CliRunner.RunExpectingAsync(0, ["stats", .. store]);
        Assert.Contains("classify@3: 4 jobs (3 completed, 1 failed, 0 cancelled)", human.Out, StringComparison.Ordinal);
        Assert.Contains("success rate 75%", human.Out, StringComparison.Ordinal);
        var bad = await CliRunner.RunExpectingAsync(2, ["stats", .. store, "--since", "yesterday"]);
        Assert.Contains("--since: 'yesterday'", bad.Err, StringComparison.Ordinal);

        // A cost reads the same on every store: no trailing zeros of a PostgreSQL numeric.
        Assert.Equal("0.00108", v.GetProperty("cost").GetRawText());
        Assert.Equal("0.00108", agent.GetProperty("cost").GetRawText());
        Assert.Equal("0.00036", v.GetProperty("cost_per_success").GetRawText());
        Assert.Contains("cost per success $0.00036", human.Out, StringComparison.Ordinal);

        // A bare number is no duration: seconds, hours or days would each be a guess.
        var bare = await CliRunner.RunExpectingAsync(2, ["stats", .. store, "--since", "10"]);
        Assert.Contains("--since: '10' is neither a duration with its unit (24h, 7d, 30m, 90s, 500ms) nor an instant (2026-11-22T00:00:00Z); a bare number has no unit", bare.Err, StringComparison.Ordinal);
        // The window's start is given to the millisecond, in JSON as in text.
        var exact = await CliRunner.RunExpectingAsync(0, ["stats", .. store, "--json", "--since", "2020-01-01T00:00:00.250Z"]);
        Assert.Equal("2020-01-01T00:00:00.250Z", exact.Json().GetProperty("since").GetString());
        Assert.Contains("jobs created since 2020-01-01T00:00:00.250Z", (await CliRunner.RunExpectingAsync(0, ["stats", .. store, "--since", "2020-01-01T00:00:00.250Z"])).Out, StringComparison.Ordinal);
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", (await CliRunner.RunExpectingAsync(0, ["stats", .. store, "--json", "--since", "90s"])).Json().GetProperty("since").GetString());
        Assert.Equal(JsonValueKind.Array, stats.Json().GetProperty("workflows").ValueKind);
    }
}
