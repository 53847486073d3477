using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Faults;

/// <summary><c>faults:</c> in a test config: model and tool faults injected where real ones happen, the same on a replay.</summary>
public sealed class FaultsTests
{
    [Fact]
    public async Task InjectedFaults_FailCallsAsRealOnesWould_AreRetriedByTheSteps_AndReplayTheSame()
    {
        using var w = Workspace.WithSample();
        File.AppendAllText(w.PathOf("sample/ordo.yaml"), """

            faults:
              seed: 7
              models:
                - { agent: extractor, error: rate_limited, attempts: [1] }
              tools:
                - { tool: "ledger.look*", error: tool_error, latency: 10ms }
            """);

        var run = await CliRunner.RunExpectingAsync(3, "run", SampleJob.Workflow(w), "--input", SampleJob.Input(w), "--db", w.Db, "--json");
        var job = run.Json().GetProperty("job_id").GetString()!;
        var events = (await CliRunner.RunExpectingAsync(0, "events", job, "--db", w.Db, "--json")).JsonLines();

        var modelFailure = Assert.Single(events, e => e.GetProperty("type").GetString() == "ModelCallFailed").GetProperty("payload");
        Assert.Equal("rate_limited", modelFailure.GetProperty("error").GetString());
        Assert.Contains("injected fault (ordo.yaml:", modelFailure.GetProperty("message").GetString(), StringComparison.Ordinal);
        // The extractor's second attempt is not faulted and succeeds; the ledger lookup then fails on every attempt.
        Assert.Contains(events, e => e.GetProperty("type").GetString() == "StepSucceeded" && e.GetProperty("step_id").GetString() == "extract");
        var toolFailure = Assert.Single(events, e => e.GetProperty("type").GetString() == "ToolCallFailed").GetProperty("payload");
        Assert.Equal("tool_error", toolFailure.GetProperty("error").GetString());
        Assert.Contains("faults.tools[0]", toolFailure.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("failed", run.Json().GetProperty("status").GetString());

        var replay = await CliRunner.RunExpectingAsync(0, "replay", job, "--db", w.Db, "--json");
        Assert.False(replay.Json().GetProperty("diverged").GetBoolean(), replay.Out);
    }

    [Fact]
    public async Task AFaultThatIsNotOne_IsAnInputErrorNamingItsPath()
    {
        using var w = Workspace.WithSample();
        File.AppendAllText(w.PathOf("sample/ordo.yaml"), "\nfaults:\n  models:\n    - { error: exploded }\n  tools:\n    - { tool: ledger.lookup }\n");

        var validate = await CliRunner.RunExpectingAsync(2, "validate", SampleJob.Workflow(w));

        Assert.Contains("faults.models[0].error: 'exploded' is not one of: timeout, rate_limited, server_error, malformed", validate.Err, StringComparison.Ordinal);
        Assert.Contains("a tool fault needs an 'error'", validate.Err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("tools:\n    - { tool: ledger.lookup, latency: 100d }", "faults.tools[0].latency: a fault's latency is at most 1h, found '100d'")]
    [InlineData("tools:\n    - { tool: ledger.lookup, error: bogus_kind }", "faults.tools[0].error: 'bogus_kind' is not one of: tool_error, timeout, connection_error, rate_limited, server_error, malformed_response")]
    [InlineData("tools:\n    - { tool: ledger.lokup, error: tool_error }", "faults.tools[0].tool: there is no tool 'ledger.lokup'")]
    [InlineData("models:\n    - { tier: nosuch, error: timeout }", "faults.models[0].tier: there is no model tier 'nosuch'")]
    [InlineData("models:\n    - { agent: extracter, error: timeout }", "faults.models[0].agent: no workflow of the project has an agent 'extracter' (agents: ")]
    [InlineData("tools:\n    - { tool: ledger.lookup, error: timeout, rate: 0 }", "faults.tools[0].rate: a fault with rate 0 injects nothing")]
    [InlineData("models:\n    - { agent: extractor, error: timeout, rate: 0 }", "faults.models[0].rate: a fault with rate 0 injects nothing")]
    [InlineData("tools:\n    - { tool: ledger.lookup, latency: 0s }", "a 'latency' above 0, or both: as it is, it injects nothing")]
    public async Task AFaultThatWouldInjectNothingOrCrashEveryAttempt_IsAnInputError(string faults, string problem)
    {
        using var w = Workspace.WithSample();
        File.AppendAllText(w.PathOf("sample/ordo.yaml"), "\nfaults:\n  seed: 7\n  " + faults + "\n");

        var validate = await CliRunner.RunExpectingAsync(2, "validate", SampleJob.Workflow(w));
        var run = await CliRunner.RunExpectingAsync(2, "run", SampleJob.Workflow(w), "--input", SampleJob.Input(w), "--db", w.Db);

        Assert.Contains(problem, validate.Err, StringComparison.Ordinal);
        Assert.Contains(problem, run.Err, StringComparison.Ordinal);
        Assert.False(File.Exists(w.Db));
    }
}
