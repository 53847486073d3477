using System.Text.Json;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Samples;

/// <summary>
/// A job carries its definition: every sample, submitted by one <c>ordo</c> process from one working directory and
/// project layout, continues in other processes started elsewhere after the project's files were changed or deleted,
/// and ends exactly as the same sample run in place does (status, artifacts and their values). Approvals on the way are
/// decided by further processes, each from a directory holding an unrelated <c>ordo.yaml</c>.
/// </summary>
public sealed class ContinueElsewhereTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    /// <summary>How the job is submitted: from where, and how the files are named.</summary>
    private static readonly string[] Layouts = ["from-parent", "from-inside", "explicit-config", "unused-files"];

    /// <summary>What happens to the project before the job continues.</summary>
    private static readonly string[] Changes = ["edited", "deleted"];

    public static TheoryData<string, string, string, string, string> Cases()
    {
        (string Sample, string Workflow, string Input)[] samples =
        [
            ("invoice-reconciliation", "reconcile.yaml", "input.json"),
            ("governed-payment", "pay.yaml", "input.json"),
            ("patterns/approval", "approval.yaml", "input.json"),
            ("patterns/auction", "auction.yaml", "input.json"),
            ("patterns/board", "board.yaml", "input.json"),
            ("patterns/foreach", "foreach.yaml", "input.json"),
            ("patterns/parallel", "parallel.yaml", "input.json"),
            ("patterns/plan", "plan.yaml", "input.json"),
            ("patterns/plan", "plan.yaml", "input-fallback.json"),
            ("patterns/sub-workflow", "sub-workflow.yaml", "input.json"),
            ("patterns/supervise", "supervise.yaml", "input.json"),
        ];
        var data = new TheoryData<string, string, string, string, string>();
        for (var i = 0; i < samples.Length; i++)
        {
            data.Add(samples[i].Sample, samples[i].Workflow, samples[i].Input, Layouts[i % Layouts.Length], Changes[i / 2 % Changes.Length]);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task ASubmittedJob_ContinuesInOtherProcessesAndDirectories_AfterItsProjectChanged_AndEndsAsARunInPlaceDoes(
        string sample, string workflow, string input, string layout, string change)
    {
        // What the sample does when run in place, start to end.
        using var reference = Workspace.WithSample(sample, "project");
        var run = await CliRunner.RunAsync("run", reference.PathOf($"project/{workflow}"), "--input", reference.PathOf($"project/{input}"), "--db", reference.Db, "--as", "alice", "--json");
        var expected = await DriveToEndAsync(reference.Root, reference.Db, run, inProcess: true);

        using var w = Workspace.WithSample(sample, "project");
        var db = w.PathOf("state/ordo.db");
        Directory.CreateDirectory(w.PathOf("state"));
        Directory.CreateDirectory(w.PathOf("other"));
        var (cwd, args) = layout switch
        {
            "from-parent" => (w.Root, new[] { "submit", $"project/{workflow}", "--input", $"project/{input}", "--db", "state/ordo.db" }),
            "from-inside" => (w.PathOf("project"), ["submit", workflow, "--input", input, "--db", "../state/ordo.db"]),
            "explicit-config" => (w.PathOf("other"), ["submit", $"../project/{workflow}", "--config", "../project/ordo.yaml", "--input", $"../project/{input}", "--db", db]),
            _ => (w.Root, ["submit", $"project/{workflow}", "--input", $"project/{input}", "--db", db]),
        };
        if (layout == "unused-files")
        {
            w.Write("project/prompts/never-used.md", "---\nversion: 1\n---\nNo agent uses this prompt.\n");
            w.Write("project/notes/ignored.yaml", "not: [a workflow\n");
        }

        var submitted = await OrdoProcess.RunAsync(cwd, Patience, [.. args, "--as", "alice"]);
        Assert.True(submitted.ExitCode == 0, $"ordo {string.Join(' ', args)}\n{submitted}");
        var jobId = submitted.OutLines.Single();

        ChangeProject(w.PathOf("project"), change);

        // Every later process starts in a folder of its own, beside an ordo.yaml that has nothing to do with the job.
        var elsewhere = w.PathOf("elsewhere");
        w.Write("elsewhere/ordo.yaml", "# another project\ntenants:\n  other: { roles: { zed: [approver] } }\n");
        var resumed = await OrdoProcess.RunAsync(elsewhere, Patience, "resume", jobId, "--db", db, "--json");
        var actual = await DriveToEndAsync(elsewhere, db, resumed, inProcess: false);

        Assert.Equal(expected.Status, actual.Status);
        Assert.Equal(expected.Artifacts, actual.Artifacts);
        Assert.Equal("completed", actual.Status);
        var audit = await OrdoProcess.RunAsync(elsewhere, Patience, "audit", "verify", "--all", "--db", db);
        Assert.True(audit.ExitCode == 0, audit.ToString());
    }

    [Fact]
    public async Task APromptsFolderNoAgentReadsFrom_DoesNotStopTheJobInALaterProcess()
    {
        using var w = Workspace.Create();
        w.Write("project/ordo.yaml", "prompts: prompts/\ntenants:\n  default: { roles: { bob: [approver] } }\n");
        w.Write("project/prompts/unused.md", "---\nversion: 1\n---\nNo agent reads this.\n");
        w.Write("project/gate.yaml", """
            ordo: 1
            workflow: gated
            version: 1
            steps:
              - { id: prepare, transform: { set: { x: 1 } }, next: ok }
              - { id: ok, approval: { role: approver } }
            """);
        w.Write("project/one.yaml", "ordo: 1\nworkflow: one\nversion: 1\nsteps:\n  - { id: only, transform: { set: { y: 2 } } }\n");
        var elsewhere = w.PathOf("elsewhere");
        Directory.CreateDirectory(elsewhere);

        // run pauses; approve and resume are later processes, elsewhere.
        var run = await OrdoProcess.RunAsync(w.PathOf("project"), Patience, "run", "gate.yaml", "--db", w.Db, "--as", "alice", "--json");
        Assert.True(run.ExitCode == 4, run.ToString());
        var gated = run.Json().GetProperty("job_id").GetString()!;
        var approved = await OrdoProcess.RunAsync(elsewhere, Patience, "approve", gated, "--as", "bob", "--db", w.Db);
        Assert.True(approved.ExitCode == 0, approved.ToString());
        var resumed = await OrdoProcess.RunAsync(elsewhere, Patience, "resume", gated, "--db", w.Db, "--json");
        Assert.True(resumed.ExitCode == 0, resumed.ToString());

        // submit, then resume in another process.
        var submitted = await OrdoProcess.RunAsync(w.PathOf("project"), Patience, "submit", "one.yaml", "--db", w.Db);
        Assert.True(submitted.ExitCode == 0, submitted.ToString());
        var finished = await OrdoProcess.RunAsync(elsewhere, Patience, "resume", submitted.OutLines.Single(), "--db", w.Db, "--json");
        Assert.True(finished.ExitCode == 0, finished.ToString());
        Assert.Equal("completed", finished.Json().GetProperty("status").GetString());
    }

    /// <summary>Edits every definition file into something that no longer loads and removes the prompts, or deletes the whole project; data files (SQLite) stay where they are for "edited".</summary>
    private static void ChangeProject(string project, string change)
    {
        if (change == "deleted")
        {
            Directory.Delete(project, recursive: true);
            return;
        }

        foreach (var file in Directory.EnumerateFiles(project, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(project, file);
            if (relative.StartsWith("data", StringComparison.Ordinal)) continue;
            File.WriteAllText(file, "ordo: 1\nsteps: [ this is no longer the file the job was submitted with\n");
        }

        if (Directory.Exists(Path.Combine(project, "prompts"))) Directory.Delete(Path.Combine(project, "prompts"), recursive: true);
    }

    private sealed record Outcome(string Status, string Artifacts);

    /// <summary>Resumes until the job ends, deciding each pending approval with two approvers (bob, then carol) on the way.</summary>
    private static async Task<Outcome> DriveToEndAsync(string cwd, string db, CliResult last, bool inProcess)
    {
        async Task<CliResult> Ordo(params string[] args) => inProcess ? await CliRunner.RunAsync(args) : await OrdoProcess.RunAsync(cwd, Patience, args);

        for (var round = 0; round < 5 && last.ExitCode == 4; round++)
        {
            var report = last.Json();
            var job = report.GetProperty("job_id").GetString()!;
            foreach (var approval in report.GetProperty("approvals").EnumerateArray().Where(a => a.GetProperty("status").GetString() == "pending"))
            {
                var on = approval.TryGetProperty("job_id", out var child) ? child.GetString()! : job;
                var id = approval.GetProperty("id").GetString()!;
                foreach (var who in new[] { "bob", "carol" }.Take(approval.GetProperty("count").GetInt32()))
                {
                    var decided = await Ordo("approve", on, "--approval", id, "--as", who, "--db", db);
                    Assert.True(decided.ExitCode == 0, $"ordo approve {on} --approval {id} --as {who}\n{decided}");
                }
            }

            last = await Ordo("resume", job, "--db", db, "--json");
        }

        Assert.True(last.ExitCode is 0 or 3, last.ToString());
        var json = last.Json();
        // An artifact written once has the same value in every run; one that concurrent branches wrote several times
        // ends with whichever wrote last, which scheduling decides: only its status and version count are compared.
        var artifacts = string.Join("\n", json.GetProperty("artifacts").EnumerateObject().OrderBy(a => a.Name, StringComparer.Ordinal)
            .Select(a => $"{a.Name} {a.Value.GetProperty("status").GetString()} v{a.Value.GetProperty("version").GetInt32()} "
                + (a.Value.GetProperty("version").GetInt32() == 1 ? a.Value.GetProperty("value").GetRawText() : "(written several times)")));
        return new Outcome(json.GetProperty("status").GetString()!, artifacts);
    }
}
