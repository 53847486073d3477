using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Ordo.Cli.Tests.Audit;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Replay;

/// <summary>
/// Export files as a replay reads and <c>ordo export</c> writes them: an edited event is refused by its hash chain,
/// a suite opens only its own regular files, and <c>--out</c> never replaces the database or a file that is not an export.
/// </summary>
public sealed class ExportFileTests
{
    [Fact]
    public async Task AnEventEditedInAnExport_IsRefused_NamingTheFileTheJobAndTheEvent()
    {
        using var w = ReplayProject.Create();
        var job = await ReplayProject.RunAsync(w);
        var file = w.PathOf("suite/job.json");
        await CliRunner.RunExpectingAsync(0, "export", job, "--db", w.Db, "--out", file);
        var export = JsonNode.Parse(File.ReadAllText(file))!;
        var events = export["job"]!["events"]!.AsArray();
        var charge = events.First(e => (string?)e!["type"] == "ToolCallRequested")!;
        charge["payload"]!["note"] = "added by hand";
        File.WriteAllText(w.PathOf("edited.json"), export.ToJsonString());

        var refused = await CliRunner.RunExpectingAsync(2, "replay", w.PathOf("edited.json"));
        Assert.Contains("edited.json", refused.Err, StringComparison.Ordinal);
        Assert.Contains($"job {job}, event {(long)charge["seq"]!} (ToolCallRequested)", refused.Err, StringComparison.Ordinal);
        Assert.Contains("hash chain", refused.Err, StringComparison.Ordinal);

        // The same edit in a suite: nothing is replayed.
        File.Copy(w.PathOf("edited.json"), w.PathOf("suite/edited.json"));
        var suite = await CliRunner.RunExpectingAsync(2, "replay", "--suite", w.PathOf("suite"));
        Assert.Contains("edited.json", suite.Err, StringComparison.Ordinal);
        Assert.Empty(suite.Out);

        // An event removed from the end of a job that ended: its log no longer reaches the end.
        var truncated = JsonNode.Parse(File.ReadAllText(file))!;
        var list = truncated["job"]!["events"]!.AsArray();
        list.RemoveAt(list.Count - 1);
        File.WriteAllText(w.PathOf("truncated.json"), truncated.ToJsonString());
        var cut = await CliRunner.RunExpectingAsync(2, "replay", w.PathOf("truncated.json"));
        Assert.Contains("before the job's end", cut.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AJobsStatusOrReason_ThatItsEventsDoNotSay_IsRefused_NamingTheFileAndTheJsonPath()
    {
        using var w = ReplayProject.Create();
        var job = await ReplayProject.RunAsync(w);
        var file = w.PathOf("job.json");
        await CliRunner.RunExpectingAsync(0, "export", job, "--db", w.Db, "--out", file);

        async Task RefusedAsync(string name, string jsonPath, string says, Action<JsonNode> edit)
        {
            var export = JsonNode.Parse(File.ReadAllText(file))!;
            edit(export["job"]!);
            File.WriteAllText(w.PathOf(name), export.ToJsonString());
            var refused = await CliRunner.RunExpectingAsync(2, "replay", w.PathOf(name));
            Assert.Contains(name, refused.Err, StringComparison.Ordinal);
            Assert.Contains(jsonPath, refused.Err, StringComparison.Ordinal);
            Assert.Contains(says, refused.Err, StringComparison.Ordinal);
            Assert.Contains(job, refused.Err, StringComparison.Ordinal);
            Assert.DoesNotContain("matches", refused.Out, StringComparison.Ordinal);
        }

        // A job whose events end in JobCompleted is completed, without a reason.
        await RefusedAsync("failed.json", "job.status", "JobCompleted", j => j["status"] = "failed");
        await RefusedAsync("hacked.json", "job.reason", "'hacked'", j => j["reason"] = "hacked");
        // A job whose events do not end is not queued once a step was scheduled.
        await RefusedAsync("queued.json", "job.status", "leave it running", j =>
        {
            var events = j["events"]!.AsArray();
            while (events.Count > 3) events.RemoveAt(events.Count - 1);
            j["status"] = "queued";
        });
        // Nor waiting for an approval it never asked for.
        await RefusedAsync("waiting.json", "job.status", "leave it running", j =>
        {
            var events = j["events"]!.AsArray();
            while (events.Count > 3) events.RemoveAt(events.Count - 1);
            j["status"] = "waiting_approval";
        });
    }

    [Fact]
    public async Task AnExportOfAnEarlierVersion_WithIndentedPayloads_StillReadsAndReplays()
    {
        // The approval sample's events hold timestamps with an offset (+00:00) and text the store escapes.
        using var w = Workspace.WithSample("patterns/approval");
        var run = await CliRunner.RunExpectingAsync(4, "run", w.PathOf("sample/approval.yaml"), "--input", w.PathOf("sample/input.json"), "--db", w.Db, "--json", "--as", "alice");
        var job = run.Json().GetProperty("job_id").GetString()!;
        await CliRunner.RunExpectingAsync(0, "export", job, "--db", w.Db, "--out", w.PathOf("new.json"));
        var text = File.ReadAllText(w.PathOf("new.json"));
        Assert.Contains("+00:00", text, StringComparison.Ordinal);   // as the serializer stores a timestamp, not escaped
        Assert.Contains("\\u002B31 20", text, StringComparison.Ordinal);  // as it stores text: the + of a phone number escaped

        // As earlier versions wrote it: every value indented, nothing escaped that JSON does not require.
        var node = JsonNode.Parse(text)!;
        File.WriteAllText(w.PathOf("old.json"), node.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
        Assert.Contains("+00:00", File.ReadAllText(w.PathOf("old.json")), StringComparison.Ordinal);
        await CliRunner.RunExpectingAsync(0, "replay", w.PathOf("old.json"));
    }

    [Fact]
    public async Task ADivergence_FromAnExport_ShowsTheRecordedValueCompact_AsFromTheStore()
    {
        using var w = ReplayProject.Create();
        var job = await ReplayProject.RunAsync(w);
        await CliRunner.RunExpectingAsync(0, "export", job, "--db", w.Db, "--out", w.PathOf("job.json"));
        var node = JsonNode.Parse(File.ReadAllText(w.PathOf("job.json")))!;
        File.WriteAllText(w.PathOf("old.json"), node.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
        var changed = ReplayProject.Workflow(w, "changed.yaml", args: """{ customer: "${ input.customer }", amount: 43 }""");

        var fromStore = (await CliRunner.RunExpectingAsync(6, "replay", job, "--db", w.Db, "--workflow", changed, "--json")).Json().GetProperty("divergence");
        foreach (var file in new[] { "job.json", "old.json" })
        {
            var fromFile = (await CliRunner.RunExpectingAsync(6, "replay", w.PathOf(file), "--workflow", changed, "--json")).Json().GetProperty("divergence");
            Assert.Equal(fromStore.GetProperty("recorded").GetString(), fromFile.GetProperty("recorded").GetString());
            Assert.Equal(fromStore.GetProperty("replayed").GetString(), fromFile.GetProperty("replayed").GetString());
            Assert.DoesNotContain('\n', fromFile.GetProperty("recorded").GetString()!);
            var human = await CliRunner.RunExpectingAsync(6, "replay", w.PathOf(file), "--workflow", changed);
            Assert.Contains("recorded: ledger.charge {\"customer\":\"C-1\",\"amount\":42}\n", human.Out.ReplaceLineEndings("\n"), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task ASuite_OpensOnlyItsOwnRegularFiles_AndReportsEveryOtherEntryWithoutReadingIt()
    {
        if (!OperatingSystem.IsLinux()) return;   // FIFOs, /dev/zero and /etc/passwd as Linux has them
        using var w = ReplayProject.Create();
        var job = await ReplayProject.RunAsync(w);
        await CliRunner.RunExpectingAsync(0, "export", job, "--db", w.Db, "--out", w.PathOf("suite/job.json"));
        File.CreateSymbolicLink(w.PathOf("suite/inside.json"), "job.json");
        var good = await CliRunner.RunExpectingAsync(0, "replay", "--suite", w.PathOf("suite"), "--json");
        Assert.Equal(2, good.Json().GetArrayLength());

        File.CreateSymbolicLink(w.PathOf("suite/zero.json"), "/dev/zero");
        File.CreateSymbolicLink(w.PathOf("suite/passwd.json"), "/etc/passwd");
        File.CreateSymbolicLink(w.PathOf("suite/nothing.json"), "nothing-there");
        Directory.CreateDirectory(w.PathOf("suite/folder.json"));
        Mkfifo(w.PathOf("suite/pipe.json"));

        // Each would hang or fill memory if it were opened: the command must end by itself.
        var suite = await CliRunner.RunAsync("replay", "--suite", w.PathOf("suite")).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(suite.ExitCode == 2, suite.ToString());
        Assert.Empty(suite.Out);
        Assert.Contains("zero.json: not read: it is a symbolic link to a file outside the suite folder", suite.Err, StringComparison.Ordinal);
        Assert.Contains("passwd.json: not read: it is a symbolic link to a file outside the suite folder", suite.Err, StringComparison.Ordinal);
        Assert.Contains("nothing.json: not read: it does not exist", suite.Err, StringComparison.Ordinal);
        Assert.Contains("folder.json: not read: it is a folder", suite.Err, StringComparison.Ordinal);
        Assert.Contains("pipe.json: not read: it is a named pipe (FIFO)", suite.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("root", suite.Err, StringComparison.Ordinal);

        // Named by itself, a FIFO or a device is not opened either, and a file that is no export is not quoted.
        var pipe = await CliRunner.RunAsync("replay", w.PathOf("suite/pipe.json")).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(2, pipe.ExitCode);
        Assert.Contains("named pipe", pipe.Err, StringComparison.Ordinal);
        var device = await CliRunner.RunAsync("replay", "/dev/zero").WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(2, device.ExitCode);
        Assert.Contains("character device", device.Err, StringComparison.Ordinal);
        var passwd = await CliRunner.RunExpectingAsync(2, "replay", w.PathOf("suite/passwd.json"));
        Assert.Contains("this is not a file written by ordo export", passwd.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("'r'", passwd.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("root", passwd.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnExportLargerThanTheLimit_IsRefused_ByTheBytesRead()
    {
        using var w = Workspace.Create();
        using (var big = new FileStream(w.PathOf("big.json"), FileMode.CreateNew))
        {
            big.SetLength((64L * 1024 * 1024) + 1);
        }

        var refused = await CliRunner.RunExpectingAsync(2, "replay", w.PathOf("big.json"));
        Assert.Contains("larger than 64 MB", refused.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ExportOut_NeverReplacesTheDatabase_ItsLogs_OrAFileThatIsNotAnExport()
    {
        using var w = ReplayProject.Create();
        var job = await ReplayProject.RunAsync(w);
        var before = w.DbFingerprint();
        File.CreateSymbolicLink(w.PathOf("link.json"), w.Db);
        Directory.CreateDirectory(w.PathOf("dir"));
        File.CreateSymbolicLink(w.PathOf("dir/up"), w.Root);
        w.Write("notes.txt", "keep me\n");

        foreach (var (target, says) in new[]
        {
            (w.Db, "is the store's database"), (w.Db + "-wal", "write-ahead log"), (w.Db + "-shm", "shared memory"),
            (w.PathOf("link.json"), "is the store's database"), (w.PathOf("dir/up/ordo.db"), "is the store's database"),
            (w.PathOf("ledger.db"), "it is an SQLite database"), (w.PathOf("notes.txt"), "is not an export"),
        })
        {
            var size = File.Exists(target) ? new FileInfo(target).Length : -1;
            var refused = await CliRunner.RunExpectingAsync(2, "export", job, "--db", w.Db, "--out", target);
            Assert.Contains(says, refused.Err, StringComparison.Ordinal);
            Assert.Contains("nothing was written", refused.Err, StringComparison.OrdinalIgnoreCase);
            Assert.Equal(size, File.Exists(target) ? new FileInfo(target).Length : -1);
        }

        Assert.Equal(before, w.DbFingerprint());
        Assert.Equal("keep me\n", File.ReadAllText(w.PathOf("notes.txt")));
        Assert.Empty(Directory.EnumerateFiles(w.Root, "*.tmp-*"));
        var jobs = await CliRunner.RunExpectingAsync(0, "jobs", "--db", w.Db, "--json");
        Assert.Equal(1, jobs.Json().GetArrayLength());

        // A missing folder is created, and said so; a previous export (or an empty file) is replaced.
        var created = await CliRunner.RunExpectingAsync(0, "export", job, "--db", w.Db, "--out", w.PathOf("new/suite/job.json"));
        Assert.Contains($"created the folder {w.PathOf("new/suite")}", created.Out, StringComparison.Ordinal);
        var again = await CliRunner.RunExpectingAsync(0, "export", job, "--db", w.Db, "--out", w.PathOf("new/suite/job.json"));
        Assert.DoesNotContain("created the folder", again.Out, StringComparison.Ordinal);
        w.Write("empty.json", "");
        await CliRunner.RunExpectingAsync(0, "export", job, "--db", w.Db, "--out", w.PathOf("empty.json"));
        await CliRunner.RunExpectingAsync(0, "replay", w.PathOf("empty.json"));
    }

    [Fact]
    public async Task ADefinitionRowRewrittenAsText_IsReadAsItsBytes_AChangedOneIsDefinitionChanged()
    {
        using var w = Workspace.WithSample("governed-payment");
        var run = await CliRunner.RunExpectingAsync(4, "run", w.PathOf("sample/pay.yaml"), "--input", w.PathOf("sample/input.json"), "--db", w.Db, "--as", "alice", "--json");
        var job = run.Json().GetProperty("job_id").GetString()!;

        // The same bytes stored as TEXT: the definition the job recorded, still.
        Execute(w.Db, "UPDATE definitions SET content = CAST(content AS TEXT)");
        Assert.Equal("text", Scalar(w.Db, "SELECT typeof(content) FROM definitions"));
        await CliRunner.RunExpectingAsync(0, "replay", job, "--db", w.Db);

        // A change made with replace() (which gives TEXT): definition_changed, exit 2, as any other change.
        Execute(w.Db, "UPDATE definitions SET content = replace(content, '\\u003E= 100\\u0022', '\\u003E= 100000\\u0022')");
        Assert.Equal("text", Scalar(w.Db, "SELECT typeof(content) FROM definitions"));
        var replay = await CliRunner.RunExpectingAsync(2, "replay", job, "--db", w.Db);
        Assert.Contains($"job {job} cannot be replayed against its recorded definition: definition_changed", replay.Err, StringComparison.Ordinal);
        Assert.Contains("it was changed in the database", replay.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("Unable to cast", replay.Err, StringComparison.Ordinal);
    }

    private static void Execute(string db, string sql)
    {
        using var c = AuditTampering.Open(db);
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        Assert.True(cmd.ExecuteNonQuery() > 0);
    }

    private static string Scalar(string db, string sql)
    {
        using var c = AuditTampering.Open(db);
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return Convert.ToString(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture)!;
    }

    private static void Mkfifo(string path)
    {
        using var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("mkfifo", [path]) { UseShellExecute = false })!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }
}
