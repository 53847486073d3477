using System.Text.RegularExpressions;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Commands;

/// <summary>
/// Invalid input exits with 2, says what is wrong and where (file, line, column, key path), and creates or changes
/// nothing: the database is byte for byte what it was, or still absent.
/// </summary>
public sealed class InvalidInputTests
{
    [Fact]
    public async Task MalformedYaml_NamesFileLineAndColumn()
    {
        using var w = Workspace.WithSample();
        var (path, line) = Mutate(w, "malformed", "  - id: lookup\n", "  - id: lookup: x\n", marker: "lookup: x");
        await AssertInvalidAsync(w, SampleJob.Args(w, "run").With(1, path), Located(path, line, path: null), "invalid YAML");
    }

    [Fact]
    public async Task UnknownKey_NamesTheKeyPath()
    {
        using var w = Workspace.WithSample();
        var (path, line) = Mutate(w, "unknown-key", "    timeout: 60s\n", "    timeout: 60s\n    retries: 3\n", marker: "retries: 3");
        var err = await AssertInvalidAsync(w, Run(w, path), Located(path, line, "steps[0].retries"), "unknown key 'retries'");
        Assert.Contains("expected one of", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownTopLevelKey_NamesTheKey()
    {
        using var w = Workspace.WithSample();
        var (path, line) = Mutate(w, "unknown-top", "description: >\n", "descriptoin: >\n", marker: "descriptoin:");
        var err = await AssertInvalidAsync(w, Run(w, path), Located(path, line, "descriptoin"), "unknown key");
        Assert.Contains("did you mean 'description'", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownTool_NamesTheStepAndTheDefinedTools()
    {
        using var w = Workspace.WithSample();
        var (path, line) = Mutate(w, "unknown-tool", "    tool: ledger.lookup\n", "    tool: ledger.lokup\n", marker: "ledger.lokup");
        var err = await AssertInvalidAsync(w, Run(w, path), LocatedInStep(path, StepLine(path, "lookup"), line, "steps[1].tool"), "'ledger.lokup' is not defined");
        Assert.Contains("ledger.lookup", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownAgent_NamesTheStep()
    {
        using var w = Workspace.WithSample();
        var (path, line) = Mutate(w, "unknown-agent", "    agent: extractor\n", "    agent: extracter\n", marker: "agent: extracter");
        await AssertInvalidAsync(w, Run(w, path), LocatedInStep(path, StepLine(path, "extract"), line, "steps[0].agent"), "'extracter' is not defined");
    }

    [Theory]
    [InlineData("200 parsecs")]
    [InlineData("-5s")]
    [InlineData("fast")]
    public async Task BadDuration_NamesTheKeyPath(string duration)
    {
        using var w = Workspace.WithSample();
        var (path, line) = Mutate(w, "bad-duration", "backoff: 200ms", $"backoff: {duration}", marker: "backoff:");
        await AssertInvalidAsync(w, Run(w, path), Located(path, line, "steps[0].retry.backoff"), $"invalid duration '{duration}'");
    }

    [Fact]
    public async Task RouteToMissingStep_NamesTheRoute()
    {
        using var w = Workspace.WithSample();
        var (path, line) = Mutate(w, "missing-step", "    next: lookup\n", "    next: look-up\n", marker: "next: look-up");
        var err = await AssertInvalidAsync(w, Run(w, path), LocatedInStep(path, StepLine(path, "extract"), line, "steps[0].next"), "'look-up' is not a step");
        Assert.Contains("lookup", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LoopWithoutMaxIterations_NamesTheStep()
    {
        using var w = Workspace.WithSample();
        // flag routes back to itself: a loop without loop.max_iterations.
        var text = File.ReadAllText(SampleJob.Workflow(w));
        var flagAt = text.IndexOf("    tool: ledger.flag\n", StringComparison.Ordinal);
        Assert.True(flagAt > 0);
        var nextAt = text.IndexOf("    next: post\n", flagAt, StringComparison.Ordinal);
        var mutated = text[..nextAt] + "    next:\n      - { when: \"steps.flag.attempts > 1\", to: flag }\n      - { to: post }\n" + text[(nextAt + "    next: post\n".Length)..];
        var path = w.Write("sample/loop.yaml", mutated);
        var line = LineOf(mutated, "  - id: flag");
        await AssertInvalidAsync(w, Run(w, path), Located(path, line, "steps[3]"), "loop: { max_iterations: N }");
    }

    [Fact]
    public async Task InputThatIsNotJson_NamesFileLineAndColumn()
    {
        using var w = Workspace.WithSample();
        var input = w.Write("sample/not-json.json", "{\n  \"invoices\": [\n    { \"id\": \"INV-1\", }\n    oops\n  ]\n}\n");
        var err = await AssertInvalidAsync(w, SampleJob.Args(w, "run").With(3, input), new Regex(Regex.Escape(input) + @":[3-4]:\d+: "), "not valid JSON");
        Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task InputThatIsNotJson_CountsTheColumnInCharacters()
    {
        using var w = Workspace.WithSample();
        const string line = "  \"invoices\": [ { \"id\": \"INV-1\", \"text\": \"Müller – Café\", x } ]";
        var input = w.Write("sample/accents.json", "{\n" + line + "\n}\n");
        var column = line.IndexOf(", x", StringComparison.Ordinal) + 3;
        await AssertInvalidAsync(w, SampleJob.Args(w, "run").With(3, input), new Regex(Regex.Escape($"{input}:2:{column}: ")), "not valid JSON");
    }

    [Fact]
    public async Task InputViolatingTheInputSchema_NamesFileLineColumnAndPath()
    {
        using var w = Workspace.WithSample();
        var input = w.Write("sample/bad-input.json", """
            {
              "invoices": [
                { "id": "INV-1001", "text": "fine" },
                { "id": "X-2", "text": "the id breaks the pattern" }
              ]
            }
            """);
        // Line 4, at the offending key: `    { "id": "X-2", ...`.
        await AssertInvalidAsync(w, SampleJob.Args(w, "run").With(3, input),
            new Regex(Regex.Escape(input) + @":4:7: \$\.invoices\[1\]\.id: "), "does not match the input schema of invoice-reconciliation@1", "pattern");
        await AssertInvalidAsync(w, SampleJob.Args(w, "submit").With(3, input), new Regex(Regex.Escape(input) + @":4:\d+: \$\.invoices\[1\]\.id: "));
    }

    [Fact]
    public async Task InputMissingARequiredProperty_PointsAtTheObjectThatLacksIt()
    {
        using var w = Workspace.WithSample();
        var input = w.Write("sample/empty.json", "{\n  \"invoices\": []\n}\n");
        await AssertInvalidAsync(w, SampleJob.Args(w, "run").With(3, input), new Regex(Regex.Escape(input) + @":2:\d+: \$\.invoices: "), "does not match the input schema");
    }

    [Fact]
    public async Task MissingInputFile_NamesIt()
    {
        using var w = Workspace.WithSample();
        var input = w.PathOf("sample/nope.json");
        await AssertInvalidAsync(w, SampleJob.Args(w, "run").With(3, input), new Regex(Regex.Escape(input)), "does not exist");
    }

    [Fact]
    public async Task MissingWorkflowFile_NamesIt()
    {
        using var w = Workspace.WithSample();
        var path = w.PathOf("sample/nope.yaml");
        await AssertInvalidAsync(w, Run(w, path), new Regex(Regex.Escape(path)), "does not exist");
        await AssertInvalidAsync(w, ["validate", path], new Regex(Regex.Escape(path)), "does not exist");
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("0")]
    [InlineData("-3")]
    [InlineData("2.5")]
    public async Task BadWorkersValue_NamesTheOption(string workers)
    {
        using var w = Workspace.WithSample();
        await AssertInvalidAsync(w, SampleJob.Args(w, "run", "--workers", workers), new Regex("--workers"));
        await SubmitAsync(w);
        await AssertInvalidAsync(w, ["resume", "--workers", workers, "--db", w.Db], new Regex("--workers"));
    }

    [Theory]
    [InlineData("show")]
    [InlineData("events")]
    [InlineData("cancel")]
    [InlineData("resume")]
    [InlineData("audit")]
    public async Task UnknownJobId_SaysTheJobDoesNotExist(string command)
    {
        using var w = Workspace.WithSample();
        await SubmitAsync(w);
        const string unknown = "0123456789abcdef0123456789abcdef";
        string[] args = command == "audit" ? ["audit", "verify", unknown, "--db", w.Db] : [command, unknown, "--db", w.Db];
        await AssertInvalidAsync(w, args, new Regex($"job {unknown} does not exist"));
        string[] malformed = command == "audit" ? ["audit", "verify", "not-a-job", "--db", w.Db] : [command, "not-a-job", "--db", w.Db];
        await AssertInvalidAsync(w, malformed, new Regex("not-a-job"));
    }

    [Theory]
    [InlineData("show")]
    [InlineData("events")]
    [InlineData("cancel")]
    [InlineData("jobs")]
    [InlineData("resume")]
    public async Task MissingDatabase_IsNotCreated(string command)
    {
        using var w = Workspace.WithSample();
        string[] args = command is "jobs" or "resume" ? [command, "--db", w.Db] : [command, "0123456789abcdef0123456789abcdef", "--db", w.Db];
        await AssertInvalidAsync(w, args, new Regex(Regex.Escape(w.Db)), "no Ordo database");
        Assert.False(File.Exists(w.Db));
    }

    [Theory]
    [InlineData("show")]
    [InlineData("events")]
    [InlineData("cancel")]
    [InlineData("run")]
    [InlineData("submit")]
    [InlineData("validate")]
    public async Task MissingArgument_PrintsUsageHint(string command)
    {
        using var w = Workspace.WithSample();
        await SubmitAsync(w);
        await AssertInvalidAsync(w, [command, "--db", w.Db], new Regex("ordo: "), $"ordo {command} --help");
    }

    [Fact]
    public async Task MissingOptionValue_IsInvalidInput()
    {
        using var w = Workspace.WithSample();
        await AssertInvalidAsync(w, ["run", SampleJob.Workflow(w), "--db", w.Db, "--input"], new Regex("--input"));
        await AssertInvalidAsync(w, ["run", SampleJob.Workflow(w), "--db", w.Db, "--bogus"], new Regex("--bogus"));
        await AssertInvalidAsync(w, ["frobnicate", "--db", w.Db], new Regex("frobnicate"));
    }

    [Fact]
    public async Task InvalidWorkflow_DoesNotChangeAnExistingDatabase()
    {
        using var w = Workspace.WithSample();
        await SubmitAsync(w);
        var (path, line) = Mutate(w, "unknown-tool", "    tool: ledger.lookup\n", "    tool: ledger.lokup\n", marker: "ledger.lokup");
        await AssertInvalidAsync(w, Run(w, path), LocatedInStep(path, StepLine(path, "lookup"), line, "steps[1].tool"));
        await AssertInvalidAsync(w, SampleJob.Args(w, "submit").With(1, path), LocatedInStep(path, StepLine(path, "lookup"), line, "steps[1].tool"));
        var jobs = (await CliRunner.RunExpectingAsync(0, "jobs", "--json", "--db", w.Db)).Json();
        Assert.Equal(1, jobs.GetArrayLength());
    }

    [Fact]
    public async Task StepWithTwoKinds_IsInvalidInput()
    {
        using var w = Workspace.WithSample();
        var (path, line) = Mutate(w, "two-kinds", "    tool: ledger.lookup\n", "    tool: ledger.lookup\n    agent: extractor\n", marker: "agent: extractor\n    args");
        await AssertInvalidAsync(w, Run(w, path), LocatedInStep(path, StepLine(path, "lookup"), line, "steps[1]"));
    }

    private static string[] Run(Workspace w, string workflow) => SampleJob.Args(w, "run").With(1, workflow);

    private static async Task SubmitAsync(Workspace w) => await CliRunner.RunExpectingAsync(0, SampleJob.Args(w, "submit"));

    /// <summary>Runs a command that must be refused as invalid input, and checks what it printed and that the database did not change.</summary>
    private static async Task<string> AssertInvalidAsync(Workspace w, string[] args, Regex location, params string[] messages)
    {
        var before = w.DbFingerprint();
        var r = await CliRunner.RunAsync(args);
        var shown = $"ordo {string.Join(' ', args)}\n{r}";
        Assert.True(r.ExitCode == 2, "expected exit code 2\n" + shown);
        Assert.True(location.IsMatch(r.Err), $"stderr does not match /{location}/\n{shown}");
        foreach (var m in messages)
        {
            Assert.True(r.Err.Contains(m, StringComparison.Ordinal), $"stderr does not say '{m}'\n{shown}");
        }

        Assert.True(r.Out.Length == 0, "nothing may be printed on stdout\n" + shown);
        Assert.DoesNotContain("internal error", r.Err, StringComparison.Ordinal);
        Assert.Equal(before, w.DbFingerprint());
        return r.Err;
    }

    /// <summary>Matches <c>FILE:LINE:COLUMN: PATH:</c> at the start of an error line.</summary>
    private static Regex Located(string file, int line, string? path)
        => new($"ordo: {Regex.Escape(file)}:{line}:\\d+: {(path is null ? "" : Regex.Escape(path) + ":")}");

    /// <summary>
    /// Matches <c>FILE:LINE:COLUMN: PATH:</c> where LINE is the key's line or the line where its step starts: a reference
    /// to something undefined is reported at the step that holds it (it would be more precise at the key itself).
    /// </summary>
    private static Regex LocatedInStep(string file, int stepLine, int keyLine, string path)
        => new($"ordo: {Regex.Escape(file)}:({stepLine}|{keyLine}):\\d+: {Regex.Escape(path)}:");

    private static int StepLine(string file, string id) => LineOf(File.ReadAllText(file), $"  - id: {id}\n");

    /// <summary>Writes a copy of the sample workflow with one change, and returns its path and the line of <paramref name="marker"/>.</summary>
    private static (string Path, int Line) Mutate(Workspace w, string name, string from, string to, string marker)
    {
        var text = File.ReadAllText(SampleJob.Workflow(w));
        var at = text.IndexOf(from, StringComparison.Ordinal);
        Assert.True(at >= 0, $"the sample no longer contains '{from}'");
        var mutated = text[..at] + to + text[(at + from.Length)..];
        return (w.Write($"sample/{name}.yaml", mutated), LineOf(mutated, marker));
    }

    private static int LineOf(string text, string marker)
    {
        var at = text.IndexOf(marker, StringComparison.Ordinal);
        Assert.True(at >= 0, $"'{marker}' not found");
        return text[..at].Count(c => c == '\n') + 1;
    }
}
