using Ordo.Cli.Tests.TestSupport;
using Ordo.TestServers;

namespace Ordo.Cli.Tests.Output;

/// <summary>A model provider's error answer, shown by a real <c>ordo run</c>: one line in the step table, its status and message, no secret.</summary>
public sealed class ProviderErrorOutputTests
{
    [Fact]
    public async Task AProviderThatRefusesTheRequest_IsNotAskedAgain()
    {
        await using var model = await LoopbackServer.StartAsync((ctx, _) => LoopbackServer.JsonAsync(ctx, 401, "{\"error\": {\"message\": \"invalid api key\"}}"));
        using var w = Workspace.Create();
        w.Write("ordo.yaml", $"models:\n  fast: {{ provider: openai-compatible, model: m, endpoint: \"{model.Address}v1\" }}\n");
        w.Write("ask.yaml", "ordo: 1\nworkflow: ask\nversion: 1\nagents:\n  asker: { kind: llm, tier: fast }\nsteps:\n  - { id: ask, agent: asker, retry: { max_attempts: 3, backoff: 1ms } }\n");

        var run = await CliRunner.RunAsync("run", w.PathOf("ask.yaml"), "--db", w.Db, "--json");
        Assert.True(run.ExitCode == 3, run.ToString());
        Assert.Contains("provider_refused", (await CliRunner.RunAsync("events", run.Json().GetProperty("job_id").GetString()!, "--db", w.Db)).Out, StringComparison.Ordinal);
        Assert.Single(model.Requests);
        Assert.Equal(1, run.Json().GetProperty("steps")[0].GetProperty("attempts").GetInt32());
    }

    [Theory]
    [InlineData("", "the provider answered HTTP 500 Internal Server Error with no error message")]
    [InlineData("{\"error\": {\"message\": \"the model is\\noverloaded, key sk-test-123456\", \"type\": \"\", \"code\": null}}", "the provider answered HTTP 500 Internal Server Error: the model is overloaded, key [REDACTED:MODEL_KEY]")]
    [InlineData("<html>\n<body>Bad gateway</body>\n</html>", "the provider answered HTTP 500 Internal Server Error: <html> <body>Bad gateway</body> </html>")]
    public async Task AProviderError_IsOneLineInTheStepTable_WithStatusAndMessage_AndNoSecret(string body, string expected)
    {
        await using var model = await LoopbackServer.StartAsync((ctx, _) => LoopbackServer.JsonAsync(ctx, 500, body));
        using var w = Workspace.Create();
        w.Write("ordo.yaml", $"models:\n  fast: {{ provider: openai-compatible, model: m, endpoint: \"{model.Address}v1\", api_key: \"${{secret:MODEL_KEY}}\" }}\n");
        w.Write("ask.yaml", """
            ordo: 1
            workflow: ask
            version: 1
            agents:
              asker: { kind: llm, tier: fast }
            steps:
              - { id: ask, agent: asker, retry: { max_attempts: 1 } }
            """);

        Environment.SetEnvironmentVariable("MODEL_KEY", "sk-test-123456");
        CliResult run;
        try
        {
            run = await CliRunner.RunAsync("run", w.PathOf("ask.yaml"), "--db", w.Db);
        }
        finally
        {
            Environment.SetEnvironmentVariable("MODEL_KEY", null);
        }

        Assert.True(run.ExitCode == 3, run.ToString());
        Assert.DoesNotContain("sk-test-123456", run.Out + run.Err, StringComparison.Ordinal);
        var lines = run.Out.Split('\n');
        var error = Array.FindIndex(lines, l => l.TrimStart().StartsWith("error:", StringComparison.Ordinal));
        Assert.True(error > 0, run.Out);
        Assert.EndsWith(expected, lines[error].TrimEnd(), StringComparison.Ordinal);
        // The table goes on right after the error line: the usage block follows, not a stray line of the provider's body.
        Assert.Equal("", lines[error + 1].Trim());
        Assert.StartsWith("usage:", lines[error + 2].Trim(), StringComparison.Ordinal);
    }
}
