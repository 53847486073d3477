using Microsoft.Data.Sqlite;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Governance;

/// <summary>
/// Through real <c>ordo</c> processes: a refused request exits 2 without a crash log; a dry run keeps the tools' result
/// contracts and leaves nothing behind; a policy that holds an artifact for approval pauses the job (exit 4), at top
/// level and inside a child job, until a later process approves it.
/// </summary>
public sealed class RefusalAndDryRunCliTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    private static void WriteLedgerProject(Workspace w, string tenants = "")
    {
        w.Write("ordo.yaml", $"""
            tools: [tools.yaml]
            connections: {"{"} ledger: {"{"} sqlite: data/ledger.db, init: ledger.sql {"}"} {"}"}
            {tenants}
            """);
        w.Write("ledger.sql", "CREATE TABLE journal(idempotency_key TEXT PRIMARY KEY, amount INTEGER);\n");
        w.Write("tools.yaml", """
            tools:
              journal.post:
                kind: sql
                connection: ledger
                query: "INSERT OR IGNORE INTO journal(idempotency_key, amount) VALUES (@idempotency_key, @amount)"
                effect: write
                args: { type: object, required: [amount], properties: { amount: { type: integer } } }
                result: { type: object, required: [rows_affected], properties: { rows_affected: { type: integer, minimum: 0 } } }
              journal.count:
                kind: sql
                connection: ledger
                query: "SELECT count(*) AS n FROM journal"
                effect: read
            """);
        w.Write("post.yaml", """
            ordo: 1
            workflow: post
            version: 1
            artifacts:
              receipt: { schema: { type: object, required: [rows_affected] } }
            steps:
              - { id: post, tool: journal.post, args: { amount: 12 }, output: receipt, next: after }
              - { id: after, transform: { set: { posted: "${ steps.post.output.rows_affected === 1 }" } } }
            """);
    }

    private static long Rows(Workspace w)
    {
        using var db = new SqliteConnection($"Data Source={w.PathOf("data/ledger.db")};Pooling=False");
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT count(*) FROM journal";
        return (long)cmd.ExecuteScalar()!;
    }

    [Fact]
    public async Task DryRun_OfAWriteToolWithAResultSchema_Completes_AppliesNothing_AndLeavesNoFileForTheRealRun()
    {
        using var w = Workspace.Create();
        WriteLedgerProject(w);

        var dry = await OrdoProcess.RunAsync(w.Root, Patience, "run", "post.yaml", "--dry-run", "--db", w.Db, "--json");
        Assert.True(dry.ExitCode == 0, dry.ToString());
        Assert.False(File.Exists(w.PathOf("data/ledger.db")), "a dry run created the tool's database");
        var job = dry.Json().GetProperty("job_id").GetString()!;
        Assert.True(dry.Json().GetProperty("dry_run").GetBoolean());
        var events = (await OrdoProcess.RunAsync(w.Root, Patience, "events", job, "--db", w.Db, "--json")).JsonLines();
        var call = events.Single(e => e.GetProperty("type").GetString() == "ToolCallSucceeded").GetProperty("payload");
        Assert.True(call.GetProperty("skipped").GetBoolean());
        Assert.Equal("not_checked", call.GetProperty("result_schema").GetString());
        Assert.True(call.GetProperty("result").GetProperty("dry_run").GetBoolean());
        // The skipped call's value is not a real result: no artifact is made of it.
        Assert.DoesNotContain(events, e => e.GetProperty("type").GetString() == "ArtifactPut" && e.GetProperty("step_id").GetString() == "post");

        var real = await OrdoProcess.RunAsync(w.Root, Patience, "run", "post.yaml", "--db", w.Db, "--json");
        Assert.True(real.ExitCode == 0, real.ToString());
        Assert.Equal(1, Rows(w));
        Assert.True(real.Json().GetProperty("artifacts").GetProperty("posted").GetProperty("value").GetBoolean());
    }

    [Fact]
    public async Task DryRun_IsTheJobs_AResumeWithoutTheFlagInAnotherProcessStillExecutesNothing()
    {
        using var w = Workspace.Create();
        WriteLedgerProject(w);
        var elsewhere = w.PathOf("elsewhere");
        Directory.CreateDirectory(elsewhere);

        var submitted = await OrdoProcess.RunAsync(w.Root, Patience, "submit", "post.yaml", "--dry-run", "--db", w.Db);
        Assert.True(submitted.ExitCode == 0, submitted.ToString());
        var resumed = await OrdoProcess.RunAsync(elsewhere, Patience, "resume", submitted.OutLines.Single(), "--db", w.Db, "--json");
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        Assert.False(File.Exists(w.PathOf("data/ledger.db")), "the resumed dry-run job executed its write");
    }

    [Fact]
    public async Task ReadTool_OnADatabaseThatDoesNotExist_FailsClearly_AndCreatesNoFile()
    {
        using var w = Workspace.Create();
        w.Write("ordo.yaml", "tools: [tools.yaml]\nconnections: { ledger: { sqlite: data/missing.db } }\n");
        w.Write("tools.yaml", "tools:\n  ledger.read: { kind: sql, connection: ledger, query: \"SELECT 1 AS one\", effect: read, retry: { max_attempts: 1 } }\n");
        w.Write("read.yaml", "ordo: 1\nworkflow: read\nversion: 1\nsteps:\n  - { id: read, tool: ledger.read }\n");

        var run = await OrdoProcess.RunAsync(w.Root, Patience, "run", "read.yaml", "--db", w.Db, "--json");
        Assert.True(run.ExitCode == 3, run.ToString());
        Assert.Contains("does not exist", run.Json().GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.False(File.Exists(w.PathOf("data/missing.db")));
    }

    [Fact]
    public async Task ATenantOverItsQuota_IsRefusedWithExitEight_AndTheWait_NoCrashLog_NothingCreated()
    {
        using var w = Workspace.Create();
        WriteLedgerProject(w, tenants: "tenants:\n  initech: { quota: { concurrent_jobs: 5, jobs_per_minute: 1 } }");

        var first = await OrdoProcess.RunAsync(w.Root, Patience, "submit", "post.yaml", "--tenant", "initech", "--db", w.Db);
        Assert.True(first.ExitCode == 0, first.ToString());
        foreach (var command in new[] { "submit", "run" })
        {
            var refused = await OrdoProcess.RunAsync(w.Root, Patience, command, "post.yaml", "--tenant", "initech", "--db", w.Db);
            Assert.True(refused.ExitCode == 8, refused.ToString());
            Assert.Contains("tenant 'initech' is over its quota: jobs_per_minute is 1", refused.Err, StringComparison.Ordinal);
            Assert.Matches(@"try again in \d+ s", refused.Err);
            Assert.DoesNotContain("internal error", refused.Err, StringComparison.Ordinal);
        }

        Assert.False(Directory.Exists(w.PathOf("logs")) && Directory.EnumerateFiles(w.PathOf("logs")).Any(), "a crash log was written");
        var jobs = (await OrdoProcess.RunAsync(w.Root, Patience, "jobs", "--db", w.Db, "--json")).Json();
        Assert.Equal(1, jobs.GetArrayLength());
    }

    [Fact]
    public async Task ArtifactHeldForApproval_ExitsFour_ThenAnotherProcessApproves_AndResumeCompletes()
    {
        using var w = Workspace.Create();
        WritePolicyProject(w);
        w.Write("make.yaml", """
            ordo: 1
            workflow: make
            version: 1
            steps:
              - { id: make, transform: { set: { res: "${ ({ x: 10 }) }" } }, next: use }
              - { id: use, transform: { set: { y: "${ artifacts.res.x + 1 }" } } }
            """);

        var run = await OrdoProcess.RunAsync(w.Root, Patience, "run", "make.yaml", "--db", w.Db, "--as", "alice", "--json");
        Assert.True(run.ExitCode == 4, run.ToString());
        var json = run.Json();
        Assert.Equal("waiting_approval", json.GetProperty("status").GetString());
        Assert.Equal("quarantined", json.GetProperty("artifacts").GetProperty("res").GetProperty("status").GetString());
        Assert.False(json.GetProperty("artifacts").TryGetProperty("y", out _));
        var job = json.GetProperty("job_id").GetString()!;

        var approved = await OrdoProcess.RunAsync(w.PathOf("logs"), Patience, "approve", job, "--as", "bob", "--db", w.Db);
        Assert.True(approved.ExitCode == 0, approved.ToString());
        var done = await OrdoProcess.RunAsync(w.Root, Patience, "resume", job, "--db", w.Db, "--json");
        Assert.True(done.ExitCode == 0, done.ToString());
        Assert.Equal(11, done.Json().GetProperty("artifacts").GetProperty("y").GetProperty("value").GetInt32());
    }

    [Fact]
    public async Task AnApprovalInsideAChildJob_PausesTheRun_WithExitFour_AndNamesTheChild()
    {
        using var w = Workspace.Create();
        WritePolicyProject(w);
        w.Write("child.yaml", "ordo: 1\nworkflow: child\nversion: 1\nsteps:\n  - { id: make, transform: { set: { res: \"${ ({ x: 10 }) }\" } } }\n");
        w.Write("parent.yaml", "ordo: 1\nworkflow: parent\nversion: 1\nsteps:\n  - { id: sub, workflow: child@1, next: after }\n  - { id: after, transform: { set: { after: true } } }\n");

        var run = await OrdoProcess.RunAsync(w.Root, Patience, "run", "parent.yaml", "--db", w.Db, "--as", "alice");
        Assert.True(run.ExitCode == 4, run.ToString());
        Assert.Contains("waiting for approval in a job under this one", run.Out, StringComparison.Ordinal);
        var json = (await OrdoProcess.RunAsync(w.Root, Patience, "resume", run.OutLines[0]["ordo: running job ".Length..].Split(' ')[0], "--db", w.Db, "--json")).Json();
        Assert.Equal("waiting_approval", json.GetProperty("status").GetString());
        var approval = json.GetProperty("approvals").EnumerateArray().Single();
        var child = approval.GetProperty("job_id").GetString()!;

        Assert.Equal(0, (await OrdoProcess.RunAsync(w.Root, Patience, "approve", child, "--as", "bob", "--db", w.Db)).ExitCode);
        var done = await OrdoProcess.RunAsync(w.Root, Patience, "resume", json.GetProperty("job_id").GetString()!, "--db", w.Db, "--json");
        Assert.True(done.ExitCode == 0, done.ToString());
        Assert.Equal("completed", done.Json().GetProperty("status").GetString());
    }

    private static void WritePolicyProject(Workspace w)
    {
        w.Write("ordo.yaml", "policies: [policies.yaml]\ntenants:\n  default: { roles: { bob: [approver] } }\n");
        w.Write("policies.yaml", """
            policy: review
            version: 1
            rules:
              - { id: big-x, on: artifact, when: "artifact.name == 'res' && artifact.value.x > 5", effect: require_approval, approval: { role: approver }, reason: "a large x is checked first" }
            """);
        Directory.CreateDirectory(w.PathOf("logs"));
    }
}
