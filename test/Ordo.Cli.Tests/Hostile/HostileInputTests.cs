using System.Text;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Hostile;

/// <summary>
/// The hostile inputs that once took gigabytes, minutes or the process, each run by the real <c>ordo</c> in a child
/// process whose heap is capped at 512 MB: each ends with a clear error (exit 2 for input, exit 3 for the job's
/// failure), and the database and other jobs are intact afterwards.
/// </summary>
public sealed class HostileInputTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    private static readonly Dictionary<string, string> SmallHeap = new() { ["DOTNET_GCHeapHardLimit"] = "0x20000000" };

    private static async Task<CliResult> OrdoAsync(Workspace w, params string[] args)
    {
        using var p = OrdoProcess.Start(SmallHeap, w.Root, args);
        var code = await p.WaitForExitAsync(Patience);
        return new CliResult(code, string.Join('\n', p.OutLines), p.Err);
    }

    private static string Header(string name) => $"ordo: 1\nworkflow: {name}\nversion: 1\n";

    public static TheoryData<string, string, string> HostileYaml => new()
    {
        { "cycle", Header("cycle") + "set: { a: &a [1, *a] }\n", "refers to the node that contains it" },
        { "laughs", Header("laughs") + "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + string.Concat("bcdefghi".Select((c, i) => $"{c}: &{c} [{string.Join(", ", Enumerable.Repeat("*" + (i == 0 ? 'a' : "bcdefghi"[i - 1]), 9))}]\n")), "more than 100,000 nodes" },
        { "brackets", Header("brackets") + "x: " + new string('[', 100_000) + new string(']', 100_000) + "\n", "deeper than 32 levels" },
        { "deep65", Header("deep65") + "steps:\n  - { id: a, transform: { set: { v: " + new string('[', 65) + new string(']', 65) + " } } }\n", "deeper than 32 levels" },
    };

    [Theory]
    [MemberData(nameof(HostileYaml))]
    public async Task HostileYaml_IsRefusedWhereItIs_QuicklyAndInLittleMemory(string name, string yaml, string message)
    {
        using var w = Workspace.Create();
        var path = w.Write(name + ".yaml", yaml);
        var result = await OrdoAsync(w, "validate", path);
        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Matches($@"{name}\.yaml:\d+:\d+: ", result.Err);
        Assert.Contains(message, result.Err, StringComparison.Ordinal);
        Assert.True(result.Err.Length < 2000, "the error is short: " + result.Err.Length);
    }

    [Fact]
    public async Task ALatin1WorkflowFile_IsRefused_NotReadWithReplacementCharacters()
    {
        using var w = Workspace.Create();
        var path = w.PathOf("latin1.yaml");
        await File.WriteAllBytesAsync(path, Encoding.Latin1.GetBytes(Header("cafe") + "description: café\nsteps:\n  - { id: a, transform: { set: { v: 1 } } }\n"));
        var result = await OrdoAsync(w, "validate", path);
        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains("not valid UTF-8", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AToolsFileThatIsAnotherFile_IsRefused_WithoutPrintingIt()
    {
        using var w = Workspace.Create();
        var secret = w.Write("notes.txt", string.Join('\n', Enumerable.Range(1, 50).Select(i => $"line {i}: private text that must not be echoed back {i}")) + "\n");
        w.Write("ordo.yaml", $"tools: [\"{secret}\"]\n");
        var workflow = w.Write("wf.yaml", Header("wf") + "steps:\n  - { id: a, transform: { set: { v: 1 } } }\n");
        var result = await OrdoAsync(w, "validate", workflow);
        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains("notes.txt:1:1:", result.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("line 3:", result.Err, StringComparison.Ordinal);
        Assert.True(result.Err.Length < 1000, result.Err);
    }

    public static TheoryData<string, byte[], string> HostileInputs => new()
    {
        { "invalid UTF-8", [.. "{\"name\": \""u8.ToArray(), 0xFF, 0xFE, .. "\"}"u8.ToArray()], "not valid UTF-8" },
        { "lone surrogate", "{\"name\": \"\\ud800\"}"u8.ToArray(), "lone surrogate" },
        { "latin-1", Encoding.Latin1.GetBytes("{\"name\": \"café\"}"), "not valid UTF-8" },
    };

    [Theory]
    [MemberData(nameof(HostileInputs))]
    public async Task AnInputThatIsNotValidText_IsAnInputError_AndNoJobIsCreated(string what, byte[] input, string message)
    {
        using var w = Workspace.Create();
        var workflow = w.Write("wf.yaml", Header("wf") + "steps:\n  - { id: a, transform: { set: { v: \"${ input.name }\" } } }\n");
        var path = w.PathOf("input.json");
        await File.WriteAllBytesAsync(path, input);
        var result = await OrdoAsync(w, "run", workflow, "--input", path, "--db", w.Db);
        Assert.True(result.ExitCode == 2, what + ": " + result);
        Assert.Contains(message, result.Err, StringComparison.Ordinal);
        Assert.Equal("absent", w.DbFingerprint());
    }

    public static TheoryData<string, string, string> HostileExpressions => new()
    {
        { "2^22 leaves", "(() => { let a = [1]; for (let i = 0; i < 22; i++) a = [a, a]; return a; })()", "larger than 4 MB as JSON" },
        { "2^28 leaves", "(() => { let a = [1]; for (let i = 0; i < 28; i++) a = [a, a]; return a; })()", "larger than 4 MB as JSON" },
        { "stringify of a graph", "(() => { let a = ['x']; for (let i = 0; i < 30; i++) a = [a, a]; return JSON.stringify(a).length; })()", "JSON.stringify would produce more than" },
        { "repeat 5e8", "'x'.repeat(5e8).length", "longer than 4194304 characters" },
        { "object keys", "Object.keys(input).length", "allocated more than 16 MB" },
    };

    [Theory]
    [MemberData(nameof(HostileExpressions))]
    public async Task AnExpressionThatWouldTakeGigabytes_FailsItsStep_AndTheStoreAndOtherJobsAreIntact(string what, string expression, string message)
    {
        using var w = Workspace.Create();
        var workflow = w.Write("wf.yaml", Header("big") + $"steps:\n  - {{ id: a, transform: {{ set: {{ v: \"${{ {expression} }}\" }} }} }}\n");
        var normal = w.Write("ok.yaml", Header("ok") + "steps:\n  - { id: a, transform: { set: { v: 1 } } }\n");
        var input = w.PathOf("input.json");
        await File.WriteAllTextAsync(input, "{" + string.Join(',', Enumerable.Range(0, 500_000).Select(i => $"\"k{i}\":{i}")) + "}");

        var before = await OrdoAsync(w, "run", normal, "--db", w.Db);
        Assert.True(before.ExitCode == 0, before.ToString());
        var result = await OrdoAsync(w, "run", workflow, "--input", input, "--db", w.Db);
        Assert.True(result.ExitCode == 3, what + ": " + result);

        // Whichever bound comes first stops it: on a loaded machine the time limit's wall-clock backstop may come
        // before the memory limit; either is a clean, bounded failure of the step.
        var output = result.Out + result.Err;
        Assert.True(output.Contains(message, StringComparison.Ordinal) || output.Contains("it ran longer than", StringComparison.Ordinal), what + ": " + output);

        var after = await OrdoAsync(w, "run", normal, "--db", w.Db);
        Assert.True(after.ExitCode == 0, after.ToString());
        var audit = await OrdoAsync(w, "audit", "verify", "--db", w.Db);
        Assert.True(audit.ExitCode == 0, audit.ToString());
        var jobs = (await OrdoAsync(w, "jobs", "--db", w.Db, "--json")).Json();
        Assert.Equal(["completed", "failed", "completed"], jobs.EnumerateArray().Select(j => j.GetProperty("status").GetString()).Reverse());
    }

    [Fact]
    public async Task ControlCharactersInAnEvent_AreShownEscaped_NotSentToTheTerminal()
    {
        using var w = Workspace.Create();
        var workflow = w.Write("wf.yaml", Header("wf") + "steps:\n  - { id: a, transform: { set: { v: \"${ input.name }\" } } }\n");
        var input = w.Write("input.json", "{\"name\": \"evil\\u001b[31mRED\\r\\nFAKE LINE\"}");
        var run = await OrdoAsync(w, "run", workflow, "--input", input, "--db", w.Db);
        Assert.True(run.ExitCode == 0, run.ToString());
        var job = SampleJob.JobIdFromRunOutput(run);
        var events = await OrdoAsync(w, "events", job, "--db", w.Db);
        Assert.True(events.ExitCode == 0, events.ToString());
        Assert.DoesNotContain('\u001b', events.Out);
        Assert.DoesNotContain('\r', events.Out);
        var identity = await OrdoAsync(w, "run", workflow, "--input", input, "--db", w.Db, "--as", "ann\u001b[31m");
        Assert.True(identity.ExitCode == 2, identity.ToString());
        Assert.Contains("control characters", identity.Err, StringComparison.Ordinal);
    }
}
