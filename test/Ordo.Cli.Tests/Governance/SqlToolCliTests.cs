using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Governance;

/// <summary>
/// Through a real <c>ordo</c> process (the other commands run in this one), the hostile <c>sql</c> tools as they were found: two million rows read under a
/// heap limit, an endless recursive query with <c>timeout: 2s</c>, a read tool that attaches the job store, and a limit
/// that is not a positive integer. Each failure is clear, ends in bounded time, and leaves the job store and the other
/// jobs intact.
/// </summary>
public sealed class SqlToolCliTests
{
    /// <summary>Only a guard against a hang: none of these runs comes close to it.</summary>
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    /// <summary>A heap of 512 MB: a result read whole (gigabytes, as before) fails the process instead of eating the machine.</summary>
    private static readonly Dictionary<string, string> HeapLimit = new() { ["DOTNET_GCHeapHardLimit"] = "0x20000000" };

    private const string TwoMillionRows = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 2000000) SELECT x, printf('%.40c', 'p') AS pad FROM c";

    private static void WriteProject(Workspace w, string tools)
    {
        w.Write("ordo.yaml", "tools: [tools.yaml]\nconnections: { ledger: { sqlite: data/ledger.db, init: ledger.sql } }\n");
        w.Write("ledger.sql", "CREATE TABLE journal(k TEXT PRIMARY KEY, amount INTEGER);\nINSERT INTO journal VALUES ('a', 1);\n");
        w.Write("tools.yaml", "tools:\n  journal.count: { kind: sql, connection: ledger, effect: read, query: \"SELECT count(*) AS n FROM journal\" }\n" + tools);
    }

    private static string WriteWorkflow(Workspace w, string tool)
    {
        var file = tool + ".yaml";
        w.Write(file, $"ordo: 1\nworkflow: w-{tool.Replace('.', '-')}\nversion: 1\nsteps:\n  - {{ id: call, tool: {tool} }}\n");
        return file;
    }

    /// <summary>Runs a job that succeeds, to show later that what the hostile job did left it alone.</summary>
    private static async Task<string> RunBystanderAsync(Workspace w)
    {
        var run = await CliRunner.RunExpectingAsync(0, "run", w.PathOf(WriteWorkflow(w, "journal.count")), "--db", w.Db, "--json");
        return run.Json().GetProperty("job_id").GetString()!;
    }

    /// <summary>Every job's log verifies, the bystander is still completed, and a new job runs.</summary>
    private static async Task AssertStoreIntactAsync(Workspace w, string bystander, params string[] jobs)
    {
        foreach (var job in jobs.Append(bystander))
        {
            await CliRunner.RunExpectingAsync(0, "audit", "verify", job, "--db", w.Db);
        }

        var shown = await CliRunner.RunExpectingAsync(0, "show", bystander, "--db", w.Db, "--json");
        Assert.Equal("completed", shown.Json().GetProperty("status").GetString());
        await RunBystanderAsync(w);
    }

    private static async Task<(string Job, string Reason)> RunFailingAsync(Workspace w, string tool, IReadOnlyDictionary<string, string>? environment = null)
    {
        var run = await OrdoProcess.RunAsync(w.Root, Patience, environment, "run", WriteWorkflow(w, tool), "--db", w.Db, "--json");
        Assert.True(run.ExitCode == 3, run.ToString());
        var json = run.Json();
        Assert.Equal("failed", json.GetProperty("status").GetString());
        return (json.GetProperty("job_id").GetString()!, json.GetProperty("reason").GetString()!);
    }

    [Fact]
    public async Task TwoMillionRows_UnderAHeapLimit_StopAtMaxRowsOrMaxResultBytes_AndLeaveSmallEvents()
    {
        using var w = Workspace.Create();
        WriteProject(w, $"""
              all.rows: {"{"} kind: sql, connection: ledger, effect: read, query: "{TwoMillionRows}" {"}"}
              all.rows.raised: {"{"} kind: sql, connection: ledger, effect: read, max_rows: 3000000, query: "{TwoMillionRows}" {"}"}
            """);
        var bystander = await RunBystanderAsync(w);

        var (rowsJob, rowsReason) = await RunFailingAsync(w, "all.rows", HeapLimit);
        var (bytesJob, bytesReason) = await RunFailingAsync(w, "all.rows.raised", HeapLimit);

        Assert.Contains("sql tool 'all.rows' returned more rows than its limit, max_rows: 10000 (raise max_rows on the tool", rowsReason, StringComparison.Ordinal);
        Assert.Contains("sql tool 'all.rows.raised' returned a result larger than its limit, max_result_bytes: 4194304 (4 MiB of JSON; raise max_result_bytes on the tool", bytesReason, StringComparison.Ordinal);
        foreach (var job in new[] { rowsJob, bytesJob })
        {
            var events = await CliRunner.RunExpectingAsync(0, "events", job, "--db", w.Db, "--json");
            Assert.True(events.Out.Length < 64 * 1024, $"the events of job {job} take {events.Out.Length} characters");
            var failed = events.JsonLines().Single(e => e.GetProperty("type").GetString() == "ToolCallFailed").GetProperty("payload");
            Assert.Equal("result_too_large", failed.GetProperty("error").GetString());
            Assert.False(failed.GetProperty("retryable").GetBoolean());
        }

        await AssertStoreIntactAsync(w, bystander, rowsJob, bytesJob);
    }

    [Fact]
    public async Task AnEndlessRecursiveQuery_WithTimeout2s_EndsTheRun_FailingAsATimeoutThatNamesTheTool()
    {
        using var w = Workspace.Create();
        WriteProject(w, """
              slow.count: { kind: sql, connection: ledger, effect: read, timeout: 2s, retry: { max_attempts: 1 }, query: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c" }
            """);
        var bystander = await RunBystanderAsync(w);

        var (job, reason) = await RunFailingAsync(w, "slow.count");

        Assert.Contains("'slow.count'", reason, StringComparison.Ordinal);
        Assert.Contains("within its timeout of 2s", reason, StringComparison.Ordinal);
        var failed = (await CliRunner.RunExpectingAsync(0, "events", job, "--db", w.Db, "--json")).JsonLines()
            .Single(e => e.GetProperty("type").GetString() == "ToolCallFailed").GetProperty("payload");
        Assert.Equal("timeout", failed.GetProperty("error").GetString());
        await AssertStoreIntactAsync(w, bystander, job);
    }

    [Fact]
    public async Task AnEndlessQuery_IsInterruptedBySigterm_AfterTheShutdownGrace_AndTheRunExitsForAResume()
    {
        using var w = Workspace.Create();
        // effect: write, so that the call is in the log (and so the statement about to start) before the signal.
        WriteProject(w, """
              forever: { kind: sql, connection: ledger, effect: write, timeout: 10m, query: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c" }
            """);
        var bystander = await RunBystanderAsync(w);
        using var run = OrdoProcess.Start(new Dictionary<string, string> { ["ORDO_SHUTDOWN_GRACE"] = "300ms" }, w.Root, "run", WriteWorkflow(w, "forever"), "--db", w.Db);
        Assert.True(await run.WaitForOutputAsync(l => l.Any(x => x.StartsWith("ordo: running job ", StringComparison.Ordinal)), Patience), run.Err);
        var job = run.OutLines.First(x => x.StartsWith("ordo: running job ", StringComparison.Ordinal))["ordo: running job ".Length..].Split(' ')[0];
        await WaitForCallAsync(w, job);

        await run.SignalAsync("TERM");

        // Before, the statement ignored the signal and the process ran until it was killed.
        Assert.Equal(130, await run.WaitForExitAsync(Patience));
        Assert.Contains($"ordo resume {job}", run.Err, StringComparison.Ordinal);
        await AssertStoreIntactAsync(w, bystander, job);
    }

    private static async Task WaitForCallAsync(Workspace w, string job)
    {
        using var guard = new CancellationTokenSource(Patience);
        while (!(await CliRunner.RunAsync("events", job, "--db", w.Db, "--json")).Out.Contains("\"ToolCallRequested\"", StringComparison.Ordinal))
        {
            await Task.Delay(50, guard.Token);
        }

        await Task.Delay(200, guard.Token);
    }

    [Fact]
    public async Task AReadToolThatAttachesTheJobStore_IsRefused_AndReadsNoJob()
    {
        using var w = Workspace.Create();
        WriteProject(w, $"""
              steal: {"{"} kind: sql, connection: ledger, effect: read, query: "ATTACH '{w.Db}' AS store; SELECT job_id FROM store.jobs" {"}"}
            """);
        var bystander = await RunBystanderAsync(w);

        var (job, reason) = await RunFailingAsync(w, "steal");

        Assert.Contains("sql tool 'steal': ATTACH is not allowed in a tool's statement", reason, StringComparison.Ordinal);
        var events = await CliRunner.RunExpectingAsync(0, "events", job, "--db", w.Db, "--json");
        Assert.DoesNotContain(bystander, events.Out, StringComparison.Ordinal);
        var failed = events.JsonLines().Single(e => e.GetProperty("type").GetString() == "ToolCallFailed").GetProperty("payload");
        Assert.Equal("not_allowed", failed.GetProperty("error").GetString());
        Assert.False(failed.GetProperty("retryable").GetBoolean());
        await AssertStoreIntactAsync(w, bystander, job);
    }

    [Theory]
    [InlineData("max_rows: 0", "tools.t.max_rows: must be at least 1, found 0")]
    [InlineData("max_result_bytes: 4MB", "tools.t.max_result_bytes: expected an integer")]
    public async Task AResultLimitThatIsNotAPositiveInteger_IsRefusedWithExitTwo_NamingFileLineAndColumn(string limit, string message)
    {
        using var w = Workspace.Create();
        WriteProject(w, $"  t: {{ kind: sql, connection: ledger, effect: read, query: \"SELECT 1\", {limit} }}\n");

        var run = await OrdoProcess.RunAsync(w.Root, Patience, "run", WriteWorkflow(w, "t"), "--db", w.Db);

        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Matches(@"tools\.yaml:3:\d+: " + System.Text.RegularExpressions.Regex.Escape(message), run.Err);
        Assert.False(File.Exists(w.Db), "a refused run created the job store");
    }
}
