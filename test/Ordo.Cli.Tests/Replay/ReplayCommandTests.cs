using System.Text.Json;
using Microsoft.Data.Sqlite;
using Ordo.Cli.Tests.TestSupport;
using Ordo.TestServers;

namespace Ordo.Cli.Tests.Replay;

/// <summary>
/// <c>ordo replay</c> and <c>ordo export</c>: every sample job replays event for event; a replay calls no model and no
/// tool; a changed prompt, route condition or tool argument is reported at the step it changed; bad input exits 2.
/// </summary>
public sealed class ReplayCommandTests
{
    public static TheoryData<string, string> Samples => new()
    {
        { "invoice-reconciliation", "reconcile.yaml" },
        { "support-triage", "triage.yaml" },
        { "governed-payment", "pay.yaml" },
        { "patterns/approval", "approval.yaml" },
        { "patterns/auction", "auction.yaml" },
        { "patterns/board", "board.yaml" },
        { "patterns/foreach", "foreach.yaml" },
        { "patterns/parallel", "parallel.yaml" },
        { "patterns/plan", "plan.yaml" },
        { "patterns/sub-workflow", "sub-workflow.yaml" },
        { "patterns/supervise", "supervise.yaml" },
    };

    [Theory]
    [MemberData(nameof(Samples))]
    public async Task EverySampleJob_ReplaysEventForEvent_FromTheStoreAndFromItsExport(string sample, string workflow)
    {
        using var w = Workspace.WithSample(sample);
        var run = await CliRunner.RunAsync("run", w.PathOf("sample/" + workflow), "--input", w.PathOf("sample/input.json"), "--db", w.Db, "--json");
        Assert.True(run.ExitCode is 0 or 4, run.ToString());
        var job = run.Json().GetProperty("job_id").GetString()!;
        var before = w.DbFingerprint();

        var fromStore = await CliRunner.RunExpectingAsync(0, "replay", job, "--db", w.Db, "--json");
        var report = fromStore.Json();
        Assert.False(report.GetProperty("diverged").GetBoolean(), fromStore.Out);
        Assert.Equal(JsonValueKind.Null, report.GetProperty("divergence").ValueKind);
        Assert.Equal(job, report.GetProperty("job_id").GetString());
        Assert.True(report.GetProperty("replayed_steps").GetInt32() > 0);

        await CliRunner.RunExpectingAsync(0, "export", job, "--db", w.Db, "--out", w.PathOf("suite/job.json"));
        var fromFile = await CliRunner.RunExpectingAsync(0, "replay", w.PathOf("suite/job.json"), "--json");
        Assert.False(fromFile.Json().GetProperty("diverged").GetBoolean(), fromFile.Out);
        Assert.Equal(before, w.DbFingerprint());
    }

    [Fact]
    public async Task AJobThatWaitedForApprovals_ReplaysWithTheRecordedDecisions()
    {
        using var w = Workspace.WithSample("patterns/approval");
        var run = await CliRunner.RunExpectingAsync(4, "run", w.PathOf("sample/approval.yaml"), "--input", w.PathOf("sample/input.json"), "--db", w.Db, "--json", "--as", "alice");
        var job = run.Json().GetProperty("job_id").GetString()!;
        await CliRunner.RunExpectingAsync(0, "approve", job, "--as", "bob", "--reason", "callback used the number on file", "--db", w.Db);
        await CliRunner.RunExpectingAsync(0, "approve", job, "--as", "carol", "--db", w.Db);
        await CliRunner.RunExpectingAsync(0, "resume", job, "--db", w.Db);

        var replay = await CliRunner.RunExpectingAsync(0, "replay", job, "--db", w.Db, "--json");
        Assert.False(replay.Json().GetProperty("diverged").GetBoolean(), replay.Out);
    }

    [Fact]
    public async Task AReplay_CallsNoModelAndNoTool_AndAppliesNoWriteAgain()
    {
        await using var server = await LoopbackServer.StartAsync((ctx, req) => req.Path.EndsWith("/chat/completions", StringComparison.Ordinal)
            ? LoopbackServer.JsonAsync(ctx, 200, JsonSerializer.Serialize(new
            {
                id = "c", @object = "chat.completion", created = 1, model = "fake",
                choices = new[] { new { index = 0, message = new { role = "assistant", content = "{\"customer\": \"C-7\", \"tier\": \"gold\"}" }, finish_reason = "stop" } },
                usage = new { prompt_tokens = 50, completion_tokens = 10, total_tokens = 60 },
            }))
            : LoopbackServer.JsonAsync(ctx, 200, "{\"updated\": true}"));
        using var w = Workspace.Create();
        w.Write("ordo.yaml", $$"""
            models:
              fast: { provider: openai-compatible, model: fake, endpoint: "{{server.Address}}v1" }
            tools: [tools.yaml]
            connections: { crm: { sqlite: crm.db, init: crm.sql } }
            """);
        w.Write("crm.sql", "CREATE TABLE upgrades(idempotency_key TEXT PRIMARY KEY, customer TEXT);\n");
        w.Write("tools.yaml", $$"""
            tools:
              crm.notify: { kind: http, method: POST, url: "{{server.Address}}customers/notify", effect: write }
              crm.upgrade: { kind: sql, connection: crm, effect: write, query: "INSERT INTO upgrades VALUES (@idempotency_key, @customer)" }
            """);
        w.Write("upgrade.yaml", """
            ordo: 1
            workflow: upgrade
            version: 1
            artifacts:
              decision: { schema: { type: object, required: [customer, tier], properties: { customer: { type: string }, tier: { type: string } } } }
            agents:
              decider: { kind: llm, tier: fast, output: decision }
            steps:
              - { id: decide, agent: decider, next: notify }
              - { id: notify, tool: crm.notify, args: { customer: "${ artifacts.decision.customer }" }, next: upgrade }
              - { id: upgrade, tool: crm.upgrade, args: { customer: "${ artifacts.decision.customer }" } }
            """);
        var run = await CliRunner.RunExpectingAsync(0, "run", w.PathOf("upgrade.yaml"), "--db", w.Db, "--json");
        var job = run.Json().GetProperty("job_id").GetString()!;
        Assert.Equal(2, server.Requests.Count);
        Assert.Equal(1L, CountUpgrades(w));

        var replay = await CliRunner.RunExpectingAsync(0, "replay", job, "--db", w.Db, "--json");
        await CliRunner.RunExpectingAsync(0, "export", job, "--db", w.Db, "--out", w.PathOf("suite/upgrade.json"));
        var suite = await CliRunner.RunExpectingAsync(0, "replay", "--suite", w.PathOf("suite"), "--json");

        Assert.False(replay.Json().GetProperty("diverged").GetBoolean(), replay.Out);
        Assert.Equal(3, replay.Json().GetProperty("answers_served").GetInt32());
        Assert.False(Assert.Single(suite.Json().EnumerateArray()).GetProperty("diverged").GetBoolean());
        Assert.Equal(2, server.Requests.Count);
        Assert.Equal(1L, CountUpgrades(w));
    }

    private static long CountUpgrades(Workspace w)
    {
        using var c = new SqliteConnection($"Data Source={w.PathOf("crm.db")};Mode=ReadOnly;Pooling=False");
        c.Open();
        using var q = c.CreateCommand();
        q.CommandText = "SELECT count(*) FROM upgrades";
        return (long)q.ExecuteScalar()!;
    }

    [Theory]
    [InlineData("prompts/extract.md", "Do not guess", "Never guess", "extract", "prompt_hash")]
    [InlineData("reconcile.yaml", "exceptions.length > 0\", to: flag", "exceptions.length > 5\", to: flag", "reconcile", "route")]
    [InlineData("reconcile.yaml", "sum + l.amount, 0)", "sum + l.amount, 1)", "post", "request")]
    public async Task AChange_IsReportedAtTheStepItChanged(string file, string from, string to, string step, string what)
    {
        using var w = Workspace.WithSample();
        var run = await CliRunner.RunExpectingAsync(0, "run", SampleJob.Workflow(w), "--input", SampleJob.Input(w), "--db", w.Db, "--json");
        var job = run.Json().GetProperty("job_id").GetString()!;
        var ledger = File.ReadAllBytes(w.PathOf("sample/data/ledger.db"));
        var changed = w.PathOf("changed");
        Directory.CreateDirectory(changed);
        foreach (var f in Directory.EnumerateFiles(w.PathOf("sample"), "*", SearchOption.AllDirectories).Where(f => !f.EndsWith(".db", StringComparison.Ordinal)))
        {
            var target = Path.Combine(changed, Path.GetRelativePath(w.PathOf("sample"), f));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(f, target);
        }

        var text = File.ReadAllText(Path.Combine(changed, file));
        Assert.Contains(from, text, StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(changed, file), text.Replace(from, to, StringComparison.Ordinal));

        var replay = await CliRunner.RunExpectingAsync(6, "replay", job, "--db", w.Db, "--workflow", Path.Combine(changed, "reconcile.yaml"), "--json");
        var divergence = replay.Json().GetProperty("divergence");
        Assert.True(replay.Json().GetProperty("diverged").GetBoolean());
        Assert.Equal(step, divergence.GetProperty("step").GetString());
        Assert.Equal(1, divergence.GetProperty("visit").GetInt32());
        Assert.Equal(what, divergence.GetProperty("what").GetString());
        Assert.NotEqual(divergence.GetProperty("recorded").GetString(), divergence.GetProperty("replayed").GetString());
        // Nothing ran for real: the ledger the sample's tools write to is as the run left it, and no ledger was made for the copy.
        Assert.Equal(ledger, File.ReadAllBytes(w.PathOf("sample/data/ledger.db")));
        Assert.False(File.Exists(Path.Combine(changed, "data/ledger.db")));

        var human = await CliRunner.RunExpectingAsync(6, "replay", job, "--db", w.Db, "--workflow", Path.Combine(changed, "reconcile.yaml"));
        Assert.Contains($"DIVERGED at step '{step}': {what}", human.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BadInput_ExitsTwo_NamingWhatAndWhere_AndChangesNothing()
    {
        using var w = Workspace.WithSample();
        var run = await CliRunner.RunExpectingAsync(0, "run", SampleJob.Workflow(w), "--input", SampleJob.Input(w), "--db", w.Db, "--json");
        var job = run.Json().GetProperty("job_id").GetString()!;
        var before = w.DbFingerprint();
        w.Write("broken.json", """{ "ordo_export": 1, "job": { "job_id": "x" }, "definitions": [] }""");
        w.Write("notjson.json", "{ \"ordo_export\": 1,\n  \"job\": [ }");
        w.Write("broken.yaml", "ordo: 1\nworkflow: invoice-reconciliation\nversion: 1\nsteps: 7\n");

        var missing = await CliRunner.RunExpectingAsync(2, "replay", "0123456789abcdef0123456789abcdef", "--db", w.Db);
        var malformed = await CliRunner.RunExpectingAsync(2, "replay", w.PathOf("broken.json"));
        var notJson = await CliRunner.RunExpectingAsync(2, "replay", w.PathOf("notjson.json"));
        var badWorkflow = await CliRunner.RunExpectingAsync(2, "replay", job, "--db", w.Db, "--workflow", w.PathOf("broken.yaml"));
        var badSuite = await CliRunner.RunExpectingAsync(2, "replay", "--suite", w.Root);
        var noJob = await CliRunner.RunExpectingAsync(2, "export", "0123456789abcdef0123456789abcdef", "--db", w.Db);

        Assert.Contains("job 0123456789abcdef0123456789abcdef does not exist", missing.Err, StringComparison.Ordinal);
        Assert.Contains("broken.json: job.job_id", malformed.Err, StringComparison.Ordinal);
        Assert.Contains("notjson.json:2:", notJson.Err, StringComparison.Ordinal);
        Assert.Contains("broken.yaml", badWorkflow.Err, StringComparison.Ordinal);
        Assert.Contains("steps", badWorkflow.Err, StringComparison.Ordinal);
        Assert.Contains("broken.json", badSuite.Err, StringComparison.Ordinal);
        Assert.Contains("does not exist", noJob.Err, StringComparison.Ordinal);
        Assert.Equal(before, w.DbFingerprint());
    }
}
