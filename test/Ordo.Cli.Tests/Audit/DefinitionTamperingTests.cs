using Microsoft.Data.Sqlite;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Audit;

/// <summary>
/// A policy threshold changed inside a job's stored definition with SQL, then <c>ordo resume</c>: the job is failed
/// before any step runs (no payment is made without the approvals the submitted policy asked for), and
/// <c>ordo audit verify</c> names it, with no checkpoint at all.
/// </summary>
public sealed class DefinitionTamperingTests
{
    [Fact]
    public async Task Resume_PolicyThresholdRaisedInTheStoredDefinition_FailsTheJobAndPaysNothing()
    {
        using var w = Workspace.WithSample("governed-payment");
        var submitted = await CliRunner.RunExpectingAsync(0, "submit", w.PathOf("sample/pay.yaml"), "--input", w.PathOf("sample/input.json"), "--db", w.Db, "--as", "alice", "--json");
        var job = submitted.Json().GetProperty("job_id").GetString()!;
        await CliRunner.RunExpectingAsync(0, "audit", "verify", job, "--db", w.Db);

        // `args.amount >= 100` needs two approvers; >= 100000 would let the 125.00 payment through without any.
        AuditTampering.ReplaceInDefinitions(w.Db, "\\u003E= 100\\u0022", "\\u003E= 100000\\u0022");

        var resumed = await CliRunner.RunExpectingAsync(0, "resume", "--db", w.Db, "--json");
        Assert.Equal(0, resumed.Json().GetProperty("steps_executed").GetInt32());
        var shown = (await CliRunner.RunExpectingAsync(0, "show", job, "--db", w.Db, "--json")).Json();
        Assert.Equal("failed", shown.GetProperty("status").GetString());
        Assert.Contains("no longer has the hash its job recorded", shown.GetProperty("reason").GetString(), StringComparison.Ordinal);
        var events = (await CliRunner.RunExpectingAsync(0, "events", job, "--db", w.Db, "--json")).JsonLines();
        Assert.DoesNotContain(events, e => e.GetProperty("type").GetString() is "StepSucceeded" or "ToolCallRequested" or "PolicyDecision");
        Assert.Contains(events, e => e.GetProperty("type").GetString() == "StepFailed" && e.GetProperty("payload").GetProperty("error").GetString() == "definition_changed");
        Assert.Equal(0, Payments(w));

        var verify = await CliRunner.RunAsync("audit", "verify", "--db", w.Db, "--json");
        Assert.True(verify.ExitCode == 3, verify.ToString());
        var line = verify.JsonLines().Single(l => l.TryGetProperty("job_id", out var id) && id.GetString() == job);
        Assert.Equal("definition_changed", line.GetProperty("status").GetString());
        var human = await CliRunner.RunAsync("audit", "verify", job, "--db", w.Db);
        Assert.Equal(3, human.ExitCode);
        Assert.Contains($"job {job}: definition_changed: the stored definition of governed-payment@1 no longer has the hash its job recorded", human.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Resume_StoredDefinitionPointedAtAnotherRootFolder_FailsTheJob_ThoughItsHashIsUnchanged()
    {
        using var w = Workspace.WithSample("governed-payment");
        var submitted = await CliRunner.RunExpectingAsync(0, "submit", w.PathOf("sample/pay.yaml"), "--input", w.PathOf("sample/input.json"), "--db", w.Db, "--as", "alice", "--json");
        var job = submitted.Json().GetProperty("job_id").GetString()!;

        // The root is where relative paths resolve (a sql connection's file): left out of the content hash, pinned by
        // the digest of the bytes the audit log recorded when the definition was stored.
        var elsewhere = w.PathOf("elsewhere");
        AuditTampering.MoveDefinitionRoots(w.Db, elsewhere);

        var resumed = await CliRunner.RunExpectingAsync(0, "resume", "--db", w.Db, "--json");
        Assert.Equal(0, resumed.Json().GetProperty("steps_executed").GetInt32());
        var shown = (await CliRunner.RunExpectingAsync(0, "show", job, "--db", w.Db, "--json")).Json();
        Assert.Equal("failed", shown.GetProperty("status").GetString());
        Assert.Contains("differs from the bytes the audit log recorded when it was stored", shown.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.False(Directory.Exists(elsewhere));
        Assert.Equal(0, Payments(w));

        var verify = await CliRunner.RunAsync("audit", "verify", job, "--db", w.Db);
        Assert.Equal(3, verify.ExitCode);
        Assert.Contains($"job {job}: definition_changed:", verify.Err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Approve_OnAJobWhoseStoredDefinitionChanged_FailsTheJobWithDefinitionChanged(bool deny)
    {
        using var w = Workspace.WithSample("governed-payment");
        var run = await CliRunner.RunExpectingAsync(4, "run", w.PathOf("sample/pay.yaml"), "--input", w.PathOf("sample/input.json"), "--db", w.Db, "--as", "alice", "--json");
        var job = run.Json().GetProperty("job_id").GetString()!;
        AuditTampering.ReplaceInDefinitions(w.Db, "\\u003E= 100\\u0022", "\\u003E= 100000\\u0022");

        string[] decide = deny ? ["approve", job, "--db", w.Db, "--as", "bob", "--deny"] : ["approve", job, "--db", w.Db, "--as", "bob"];
        var approved = await CliRunner.RunExpectingAsync(3, decide);
        Assert.Contains($"job {job}", approved.Err, StringComparison.Ordinal);
        Assert.Contains("definition_changed", approved.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("internal error", approved.Err, StringComparison.Ordinal);

        var shown = (await CliRunner.RunExpectingAsync(0, "show", job, "--db", w.Db, "--json")).Json();
        Assert.Equal("failed", shown.GetProperty("status").GetString());
        Assert.Contains("no longer has the hash its job recorded", shown.GetProperty("reason").GetString(), StringComparison.Ordinal);
        var events = (await CliRunner.RunExpectingAsync(0, "events", job, "--db", w.Db, "--json")).JsonLines();
        Assert.DoesNotContain(events, e => e.GetProperty("type").GetString() == "ApprovalDecided");
        Assert.Contains(events, e => e.GetProperty("type").GetString() == "StepFailed" && e.GetProperty("payload").GetProperty("error").GetString() == "definition_changed");
        Assert.Contains(events, e => e.GetProperty("type").GetString() == "JobFailed" && e.GetProperty("payload").GetProperty("error").GetString() == "definition_changed");

        // The job has ended: a second decision is refused as any decision on an ended job, and nothing was paid.
        await CliRunner.RunExpectingAsync(2, "approve", job, "--db", w.Db, "--as", "carol");
        await CliRunner.RunExpectingAsync(3, "resume", job, "--db", w.Db);
        Assert.Equal(0, Payments(w));
    }

    [Fact]
    public async Task Cancel_OnAJobWhoseStoredDefinitionChanged_CancelsIt()
    {
        using var w = Workspace.WithSample("governed-payment");
        var run = await CliRunner.RunExpectingAsync(4, "run", w.PathOf("sample/pay.yaml"), "--input", w.PathOf("sample/input.json"), "--db", w.Db, "--as", "alice", "--json");
        var job = run.Json().GetProperty("job_id").GetString()!;
        AuditTampering.ReplaceInDefinitions(w.Db, "\\u003E= 100\\u0022", "\\u003E= 100000\\u0022");

        await CliRunner.RunExpectingAsync(0, "cancel", job, "--db", w.Db);
        var shown = (await CliRunner.RunExpectingAsync(0, "show", job, "--db", w.Db, "--json")).Json();
        Assert.Equal("cancelled", shown.GetProperty("status").GetString());
        Assert.Equal(0, Payments(w));
    }

    [Fact]
    public async Task Replay_OfAJobWhoseStoredDefinitionChanged_IsRefusedNamingTheJob_NotReportedAsADivergence()
    {
        using var w = Workspace.WithSample("governed-payment");
        var run = await CliRunner.RunExpectingAsync(4, "run", w.PathOf("sample/pay.yaml"), "--input", w.PathOf("sample/input.json"), "--db", w.Db, "--as", "alice", "--json");
        var job = run.Json().GetProperty("job_id").GetString()!;
        await CliRunner.RunExpectingAsync(0, "export", job, "--db", w.Db, "--out", w.PathOf("before.json"));
        AuditTampering.ReplaceInDefinitions(w.Db, "\\u003E= 100\\u0022", "\\u003E= 100000\\u0022");

        // The changed definition is not exported as the job's: refused, naming the job, and no file is written.
        var export = await CliRunner.RunExpectingAsync(2, "export", job, "--db", w.Db, "--out", w.PathOf("after.json"));
        Assert.Contains($"job {job} cannot be exported: definition_changed", export.Err, StringComparison.Ordinal);
        Assert.False(File.Exists(w.PathOf("after.json")));

        // The same change made in an export file.
        var text = await File.ReadAllTextAsync(w.PathOf("before.json"));
        var edited = text.Replace(">= 100\\\"", ">= 100000\\\"", StringComparison.Ordinal);
        Assert.NotEqual(text, edited);
        await File.WriteAllTextAsync(w.PathOf("after.json"), edited);

        foreach (var target in new[] { job, w.PathOf("after.json") })
        {
            var replay = await CliRunner.RunExpectingAsync(2, "replay", target, "--db", w.Db);
            Assert.Contains($"job {job} cannot be replayed against its recorded definition: definition_changed", replay.Err, StringComparison.Ordinal);
            Assert.Contains(target == job ? "it was changed in the database" : $"it was changed in the export file {target}", replay.Err, StringComparison.Ordinal);
        }

        // What was exported before the change still replays as recorded.
        await CliRunner.RunExpectingAsync(0, "replay", w.PathOf("before.json"));
    }

    private static long Payments(Workspace w)
    {
        var ledger = w.PathOf("sample/data/ledger.db");
        if (!File.Exists(ledger)) return 0;
        using var c = new SqliteConnection($"Data Source={ledger};Pooling=False");
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT count(*) FROM sqlite_master WHERE name = 'payments'";
        if ((long)cmd.ExecuteScalar()! == 0) return 0;
        cmd.CommandText = "SELECT count(*) FROM payments";
        return (long)cmd.ExecuteScalar()!;
    }
}
