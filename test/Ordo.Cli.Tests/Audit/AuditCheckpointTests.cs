using System.Text.Json;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Audit;

/// <summary>
/// <c>ordo audit checkpoint</c> and <c>ordo audit verify --checkpoint</c>, run as the <c>ordo</c> executable against a real
/// database file that is then changed with SQL the way someone who can write it and knows its format would: each change
/// is found and the job it hits named; jobs added after the checkpoint are accepted.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class AuditCheckpointTests : IClassFixture<AuditCheckpointTests.ThreeCompletedJobs>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);
    private readonly ThreeCompletedJobs _jobs;

    public AuditCheckpointTests(ThreeCompletedJobs jobs) => _jobs = jobs;

    public enum Tampering
    {
        RewriteDefinition,
        DeleteWholeJob,
        DeleteNewestEvents,
        RewriteEventAndReseal,
        SwapTwoJobs,
        DeleteJobAndRebuildTheAuditLog,
    }

    [Fact]
    public async Task Checkpoint_UntouchedStore_VerifiesAndCreatesAnOwnerOnlyKey()
    {
        using var w = _jobs.Copy();
        var taken = await OrdoAsync(w, "audit", "checkpoint", "--db", w.Db, "--out", w.PathOf("cp.json"), "--json");
        Assert.True(taken.ExitCode == 0, taken.ToString());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(KeyPath(w)));
        var json = taken.Json();
        Assert.Equal(3, json.GetProperty("jobs").GetInt32());
        Assert.True(json.GetProperty("tree_size").GetInt64() > 3);
        using (var file = JsonDocument.Parse(File.ReadAllText(w.PathOf("cp.json"))))
        {
            Assert.Equal(json.GetProperty("root").GetString(), file.RootElement.GetProperty("root").GetString());
            Assert.Equal(_jobs.JobIds.Order(StringComparer.Ordinal), file.RootElement.GetProperty("jobs").EnumerateArray().Select(j => j.GetProperty("id").GetString()));
        }

        var verified = await OrdoAsync(w, "audit", "verify", "--db", w.Db, "--checkpoint", w.PathOf("cp.json"));
        Assert.True(verified.ExitCode == 0, verified.ToString());
        Assert.Contains("extends the checkpoint", verified.Out, StringComparison.Ordinal);
        var one = await OrdoAsync(w, "audit", "verify", _jobs.JobIds[1], "--db", w.Db, "--checkpoint", w.PathOf("cp.json"), "--json");
        Assert.True(one.ExitCode == 0, one.ToString());
        Assert.Equal("intact", one.JsonLines()[0].GetProperty("status").GetString());
    }

    [Fact]
    public async Task Verify_JobsAddedSinceTheCheckpoint_AreAcceptedAndTheLogExtendsIt()
    {
        using var w = _jobs.Copy();
        await CheckpointAsync(w);
        var run = (await CliRunner.RunExpectingAsync(0, SampleJob.Args(w, "run", "--json"))).Json();
        var added = run.GetProperty("job_id").GetString()!;

        var r = await OrdoAsync(w, "audit", "verify", "--all", "--db", w.Db, "--checkpoint", w.PathOf("cp.json"), "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var lines = r.JsonLines();
        var job = lines.Single(l => l.TryGetProperty("job_id", out var id) && id.GetString() == added);
        Assert.Equal("intact", job.GetProperty("status").GetString());
        Assert.False(job.GetProperty("in_checkpoint").GetBoolean());
        var log = lines[^1].GetProperty("audit_log");
        Assert.True(log.GetProperty("intact").GetBoolean());
        Assert.Equal(1, log.GetProperty("jobs_added_since").GetInt32());
        Assert.True(log.GetProperty("tree_size").GetInt64() > log.GetProperty("checkpoint_tree_size").GetInt64());
    }

    [Fact]
    public async Task Verify_ALeafDeletedFromTheMiddleOfTheLog_IsNamed_AndOnlyItsJobIsBlamed()
    {
        using var w = _jobs.Copy();
        var victim = _jobs.JobIds[1];
        long deleted;
        using (var c = AuditTampering.Open(w.Db))
        {
            // The victim's second leaf: a commit in the middle of its log and of the store's.
            deleted = AuditTampering.Scalar<long>(c, "SELECT idx FROM audit_leaves WHERE subject = $s ORDER BY idx LIMIT 1 OFFSET 1", ("$s", victim));
            Assert.Equal(1, AuditTampering.Execute(c, "DELETE FROM audit_leaves WHERE idx = $i", ("$i", deleted)));
        }

        var r = await OrdoAsync(w, "audit", "verify", "--all", "--db", w.Db, "--json");
        Assert.True(r.ExitCode == 3, r.ToString());
        var lines = r.JsonLines();
        var byJob = lines.Where(l => l.TryGetProperty("job_id", out _)).ToDictionary(l => l.GetProperty("job_id").GetString()!, l => l.GetProperty("status").GetString());
        Assert.Equal("not_logged", byJob[victim]);
        Assert.All(_jobs.JobIds.Where(id => id != victim), id => Assert.Equal("intact", byJob[id]));
        Assert.Contains(lines[^1].GetProperty("audit_log").GetProperty("problems").EnumerateArray(), p => p.GetString()!.Contains($"leaf {deleted} of the audit log is missing", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Verify_AKeptSubtreeThatNoRootReads_WhenAltered_IsNamed()
    {
        using var w = _jobs.Copy();
        using (var c = AuditTampering.Open(w.Db))
        {
            // Subtree (4, 0) lies under (5, 0): the root is computed from the larger one, but proofs of the leaves
            // 0..15 read the smaller.
            Assert.True(AuditTampering.Scalar<long>(c, "SELECT count(*) FROM audit_nodes WHERE level = 5 AND idx = 0") == 1, "the sample's store holds fewer than 32 leaves");
            Assert.Equal(1, AuditTampering.Execute(c, "UPDATE audit_nodes SET hash = zeroblob(32) WHERE level = 4 AND idx = 0"));
        }

        var r = await OrdoAsync(w, "audit", "verify", "--all", "--db", w.Db, "--json");
        Assert.True(r.ExitCode == 3, r.ToString());
        var log = r.JsonLines()[^1].GetProperty("audit_log");
        Assert.False(log.GetProperty("intact").GetBoolean());
        Assert.Contains(log.GetProperty("problems").EnumerateArray(), p => p.GetString()!.Contains("the kept subtree of leaves 0..15 (level 4)", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("tenant", "'other'")]
    [InlineData("status", "'failed'")]
    [InlineData("workflow", "'another-workflow'")]
    [InlineData("submitter", "'mallory'")]
    public async Task Verify_AJobRecordChangedOutsideItsLog_IsNamed_WithAndWithoutTheCheckpoint(string column, string value)
    {
        using var w = _jobs.Copy();
        await CheckpointAsync(w);
        var victim = _jobs.JobIds[1];
        using (var c = AuditTampering.Open(w.Db))
        {
            Assert.Equal(1, AuditTampering.Execute(c, $"UPDATE jobs SET {column} = {value} WHERE job_id = $id", ("$id", victim)));
        }

        foreach (var args in new[] { new[] { "audit", "verify", "--all", "--db", w.Db }, ["audit", "verify", "--all", "--db", w.Db, "--checkpoint", w.PathOf("cp.json")], ["audit", "verify", victim, "--db", w.Db] })
        {
            var r = await OrdoAsync(w, args);
            Assert.True(r.ExitCode == 3, r.ToString());
            Assert.Contains(victim, r.ToString(), StringComparison.Ordinal);
            Assert.Contains($"the job's record has {column}", r.ToString(), StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData(Tampering.RewriteDefinition)]
    [InlineData(Tampering.DeleteWholeJob)]
    [InlineData(Tampering.DeleteNewestEvents)]
    [InlineData(Tampering.RewriteEventAndReseal)]
    [InlineData(Tampering.SwapTwoJobs)]
    [InlineData(Tampering.DeleteJobAndRebuildTheAuditLog)]
    public async Task Verify_StoreChangedAfterTheCheckpoint_FailsAndNamesEachJobHit(Tampering tampering)
    {
        using var w = _jobs.Copy();
        await CheckpointAsync(w);
        var ids = _jobs.JobIds;
        var expected = new Dictionary<string, string>();
        switch (tampering)
        {
            case Tampering.RewriteDefinition:
                AuditTampering.RewriteDefinition(w.Db, yaml => yaml + "\n# changed in the database\n");
                foreach (var id in ids) expected[id] = "definition_changed";
                break;
            case Tampering.DeleteWholeJob:
                AuditTampering.DeleteJob(w.Db, ids[1]);
                expected[ids[1]] = "deleted";
                break;
            case Tampering.DeleteNewestEvents:
                AuditTampering.DeleteNewestEvents(w.Db, ids[2], 3);
                expected[ids[2]] = "truncated";
                break;
            case Tampering.RewriteEventAndReseal:
                await AuditTampering.RewriteAndResealAsync(w.Db, ids[0], "Globex", "Globez");
                expected[ids[0]] = "resealed";
                break;
            case Tampering.SwapTwoJobs:
                AuditTampering.SwapJobs(w.Db, ids[0], ids[2]);
                expected[ids[0]] = "rewritten";
                expected[ids[2]] = "rewritten";
                break;
            case Tampering.DeleteJobAndRebuildTheAuditLog:
                AuditTampering.DeleteJob(w.Db, ids[1]);
                AuditTampering.RemoveFromAuditLogAndRebuild(w.Db, ids[1]);
                expected[ids[1]] = "deleted";
                break;
        }

        var json = await OrdoAsync(w, "audit", "verify", "--all", "--db", w.Db, "--checkpoint", w.PathOf("cp.json"), "--json");
        Assert.True(json.ExitCode == 3, $"{tampering}: expected exit code 3\n{json}");
        var lines = json.JsonLines();
        var byJob = lines.Where(l => l.TryGetProperty("job_id", out _)).ToDictionary(l => l.GetProperty("job_id").GetString()!);
        foreach (var id in ids)
        {
            var status = byJob[id].GetProperty("status").GetString();
            Assert.True(status == expected.GetValueOrDefault(id, "intact"), $"{tampering}: job {id} is {status}, expected {expected.GetValueOrDefault(id, "intact")}\n{json}");
        }

        Assert.False(lines[^1].GetProperty("audit_log").GetProperty("intact").GetBoolean());
        if (tampering == Tampering.DeleteJobAndRebuildTheAuditLog)
        {
            // The stored log agrees with itself; only the checkpoint kept outside shows it lost what it covered.
            Assert.Contains(lines[^1].GetProperty("audit_log").GetProperty("problems").EnumerateArray(), p => p.GetString()!.Contains("does not extend the checkpoint", StringComparison.Ordinal));
        }

        var human = await OrdoAsync(w, "audit", "verify", "--db", w.Db, "--checkpoint", w.PathOf("cp.json"));
        Assert.Equal(3, human.ExitCode);
        Assert.Contains("BROKEN", human.Out, StringComparison.Ordinal);
        foreach (var id in expected.Keys) Assert.Contains($"job {id}:", human.Err, StringComparison.Ordinal);

        var single = await OrdoAsync(w, "audit", "verify", expected.Keys.First(), "--db", w.Db, "--checkpoint", w.PathOf("cp.json"), "--json");
        Assert.True(single.ExitCode == 3, $"{tampering}: one job\n{single}");
        Assert.Equal(expected.Values.First(), single.JsonLines()[0].GetProperty("status").GetString());
    }

    [Fact]
    public async Task Checkpoint_KeyNamedInOrdoYaml_IsCreatedThere_AndAMissingDatabaseCreatesNoKey()
    {
        using var w = _jobs.Copy();
        var config = w.Write("project/ordo.yaml", "audit: { key: secrets/audit.pem }\n");
        var none = new Dictionary<string, string>();
        var missing = await OrdoAsync(w, none, "audit", "checkpoint", "--config", config, "--db", w.PathOf("nothing.db"));
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("there is no Ordo database", missing.Err, StringComparison.Ordinal);
        Assert.False(File.Exists(w.PathOf("project/secrets/audit.pem")));

        var taken = await OrdoAsync(w, none, "audit", "checkpoint", "--config", config, "--db", w.Db, "--out", w.PathOf("cp.json"), "--json");
        Assert.True(taken.ExitCode == 0, taken.ToString());
        Assert.Equal(w.PathOf("project/secrets/audit.pem"), taken.Json().GetProperty("key").GetString());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(w.PathOf("project/secrets/audit.pem")));
        var verified = await OrdoAsync(w, none, "audit", "verify", "--config", config, "--db", w.Db, "--checkpoint", w.PathOf("cp.json"));
        Assert.True(verified.ExitCode == 0, verified.ToString());
    }

    [Fact]
    public async Task Checkpoint_KeyThatOthersCanRead_IsRefusedAndNothingIsRecorded()
    {
        using var w = _jobs.Copy();
        Directory.CreateDirectory(Path.GetDirectoryName(KeyPath(w))!);
        await CheckpointAsync(w);
        File.SetUnixFileMode(KeyPath(w), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        var before = w.DbFingerprint();

        var r = await OrdoAsync(w, "audit", "checkpoint", "--db", w.Db, "--out", w.PathOf("second.json"));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains($"audit key {KeyPath(w)}: other users can read or write it", r.Err, StringComparison.Ordinal);
        Assert.False(File.Exists(w.PathOf("second.json")));
        Assert.Equal(before, w.DbFingerprint());
    }

    [Fact]
    public async Task Verify_BadCheckpointsAndKeys_AreInputErrorsThatNameFileAndFieldAndChangeNothing()
    {
        using var w = _jobs.Copy();
        await CheckpointAsync(w);
        var good = File.ReadAllText(w.PathOf("cp.json"));
        var before = w.DbFingerprint();

        w.Write("notjson.json", "{ this is not json");
        await ExpectInputErrorAsync(w, "notjson.json", $"checkpoint {w.PathOf("notjson.json")}: it is not JSON");

        w.Write("noroot.json", Edit(good, o => o.Remove("root")));
        await ExpectInputErrorAsync(w, "noroot.json", $"checkpoint {w.PathOf("noroot.json")}: root is missing");

        w.Write("badseq.json", Edit(good, o => o["jobs"]![0]!["seq"] = "twelve"));
        await ExpectInputErrorAsync(w, "badseq.json", "jobs[0].seq is missing or not a whole number");

        w.Write("bigger.json", Edit(good, o => o["tree_size"] = o["tree_size"]!.GetValue<long>() + 1));
        await ExpectInputErrorAsync(w, "bigger.json", "its signature does not verify with the audit key");

        w.Write("fewerjobs.json", Edit(good, o => o["jobs"]!.AsArray().RemoveAt(0)));
        await ExpectInputErrorAsync(w, "fewerjobs.json", "its list of jobs does not match the digest it signed");

        await ExpectInputErrorAsync(w, "missing.json", $"checkpoint {w.PathOf("missing.json")}: there is no such file");

        var noKey = await OrdoAsync(w, new Dictionary<string, string> { ["ORDO_AUDIT_KEY"] = w.PathOf("nowhere/key.pem") }, "audit", "verify", "--db", w.Db, "--checkpoint", w.PathOf("cp.json"));
        Assert.Equal(2, noKey.ExitCode);
        Assert.Contains($"audit key {w.PathOf("nowhere/key.pem")}: there is no such file", noKey.Err, StringComparison.Ordinal);
        Assert.False(File.Exists(w.PathOf("nowhere/key.pem")));

        // A checkpoint signed by another key (someone who rewrote the store and signed its new head with a key of their own).
        var other = new Dictionary<string, string> { ["ORDO_AUDIT_KEY"] = w.PathOf("other/key.pem") };
        Assert.Equal(0, (await OrdoAsync(w, other, "audit", "checkpoint", "--db", w.Db, "--out", w.PathOf("forged.json"))).ExitCode);
        before = w.DbFingerprint();
        await ExpectInputErrorAsync(w, "forged.json", "it was signed with key sha256:");

        w.Write("notakey.pem", "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n");
        var badKey = await OrdoAsync(w, new Dictionary<string, string> { ["ORDO_AUDIT_KEY"] = w.PathOf("notakey.pem") }, "audit", "verify", "--db", w.Db, "--checkpoint", w.PathOf("cp.json"));
        Assert.Equal(2, badKey.ExitCode);
        Assert.Contains($"audit key {w.PathOf("notakey.pem")}: it is not an ECDSA P-256 key in PEM", badKey.Err, StringComparison.Ordinal);
        Assert.Equal(before, w.DbFingerprint());

        async Task ExpectInputErrorAsync(Workspace ws, string file, string message)
        {
            var r = await OrdoAsync(ws, "audit", "verify", "--db", ws.Db, "--checkpoint", ws.PathOf(file));
            Assert.True(r.ExitCode == 2, $"{file}: expected exit code 2\n{r}");
            Assert.Contains(message, r.Err, StringComparison.Ordinal);
            Assert.Equal(before, ws.DbFingerprint());
        }
    }

    private static string Edit(string json, Action<System.Text.Json.Nodes.JsonObject> change)
    {
        var o = System.Text.Json.Nodes.JsonNode.Parse(json)!.AsObject();
        change(o);
        return o.ToJsonString();
    }

    private static string KeyPath(Workspace w) => w.PathOf("keys/audit-key.pem");

    private static async Task CheckpointAsync(Workspace w)
    {
        var r = await OrdoAsync(w, "audit", "checkpoint", "--db", w.Db, "--out", w.PathOf("cp.json"));
        Assert.True(r.ExitCode == 0, r.ToString());
    }

    private static Task<CliResult> OrdoAsync(Workspace w, params string[] args)
        => OrdoAsync(w, new Dictionary<string, string> { ["ORDO_AUDIT_KEY"] = KeyPath(w) }, args);

    private static Task<CliResult> OrdoAsync(Workspace w, IReadOnlyDictionary<string, string> environment, params string[] args)
        => OrdoProcess.RunAsync(w.Root, Timeout, environment, args);

    /// <summary>Three completed jobs of the invoice-reconciliation sample; each test works on its own copy of the database.</summary>
    public sealed class ThreeCompletedJobs : IAsyncLifetime
    {
        private readonly Workspace _workspace = Workspace.WithSample();

        public IReadOnlyList<string> JobIds { get; private set; } = [];

        internal Workspace Copy()
        {
            var w = Workspace.WithSample();
            File.Copy(_workspace.Db, w.Db);
            return w;
        }

        public async Task InitializeAsync()
        {
            var ids = new List<string>();
            for (var i = 0; i < 3; i++)
            {
                var run = (await CliRunner.RunExpectingAsync(0, SampleJob.Args(_workspace, "run", "--json"))).Json();
                ids.Add(run.GetProperty("job_id").GetString()!);
            }

            JobIds = ids;
        }

        public Task DisposeAsync()
        {
            _workspace.Dispose();
            return Task.CompletedTask;
        }
    }
}
