using System.Text.Json;
using Microsoft.Data.Sqlite;
using Ordo.Cli.Tests.TestSupport;
using Ordo.TestServers;

namespace Ordo.Cli.Tests.Releases;

/// <summary>
/// Releases from ordo.yaml, through <c>ordo submit --workflow NAME</c>, <c>ordo resume</c> and <c>ordo releases</c>: a canary
/// that fails its bound rolls itself back, a healthy one stays, and shadow jobs apply no write effect while their
/// production jobs apply theirs once.
/// </summary>
public sealed class ReleasesCommandTests
{
    private static void WriteTriage(Workspace w, string release, string canaryAnswer)
    {
        w.Write("ordo.yaml", $$"""
            models:
              fast: { provider: scripted, fixtures: fixtures.yaml, price: { input_per_1k: 0.001, output_per_1k: 0.002 } }
            releases:
              triage:
            {{release}}
            """);
        w.Write("fixtures.yaml", $$"""
            responses:
              - { agent: classifier, content: '{"label": "billing"}', usage: { input_tokens: 200, output_tokens: 20 } }
              - { agent: classifier_next, content: '{{canaryAnswer}}', usage: { input_tokens: 200, output_tokens: 20 } }
            """);
        foreach (var (version, agent) in new[] { (1, "classifier"), (2, "classifier_next") })
        {
            w.Write($"triage-v{version}.yaml", $$"""
                ordo: 1
                workflow: triage
                version: {{version}}
                artifacts:
                  label: { schema: { type: object, required: [label], properties: { label: { type: string } } } }
                agents:
                  {{agent}}: { kind: llm, version: {{version}}, tier: fast, output: label }
                steps:
                  - { id: classify, agent: {{agent}} }
                """);
        }
    }

    /// <summary>The options that name the store: <c>--postgres CONNSTR</c> when given, else the workspace's SQLite file.</summary>
    private static string[] Store(Workspace w, string? postgres) => postgres is null ? ["--db", w.Db] : ["--postgres", postgres];

    /// <summary>Submits a job by name and runs it; returns the version it got.</summary>
    private static async Task<int> SubmitAndRunAsync(Workspace w, bool everything = false, string? postgres = null)
    {
        var submitted = await CliRunner.RunExpectingAsync(0, ["submit", "--workflow", "triage", "--config", w.PathOf("ordo.yaml"), .. Store(w, postgres), "--json"]);
        var job = submitted.Json().GetProperty("job_id").GetString()!;
        var resumed = everything ? await CliRunner.RunAsync(["resume", .. Store(w, postgres)]) : await CliRunner.RunAsync(["resume", job, .. Store(w, postgres)]);
        Assert.True(resumed.ExitCode is 0 or 3, resumed.ToString());
        var workflow = submitted.Json().GetProperty("workflow").GetString()!;
        return int.Parse(workflow[(workflow.IndexOf('@', StringComparison.Ordinal) + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task<JsonElement> ReleaseAsync(Workspace w, string? postgres = null)
        => Assert.Single((await CliRunner.RunExpectingAsync(0, ["releases", "triage", "--config", w.PathOf("ordo.yaml"), .. Store(w, postgres), "--json"])).Json().EnumerateArray());

    [Theory]
    [InlineData("    stable: 42", "releases.triage.stable: the stable version of 'triage' is version 42")]
    [InlineData("    stable: 1\n    canary: { version: 9, share: 1.0 }", "releases.triage.canary.version: the canary of 'triage' is version 9")]
    [InlineData("    stable: 1\n    shadow: { version: 9 }", "releases.triage.shadow.version: the shadow of 'triage' is version 9")]
    public async Task AReleaseOfAVersionThatDoesNotExist_IsRefusedByEveryCommandThatLoadsTheProject_AndNothingIsCreated(string release, string problem)
    {
        using var w = Workspace.Create();
        WriteTriage(w, release, """{"label": "billing"}""");
        var config = w.PathOf("ordo.yaml");

        string[][] commands =
        [
            ["validate", w.PathOf("triage-v1.yaml")],
            ["run", w.PathOf("triage-v1.yaml")],
            ["submit", "--workflow", "triage", "--config", config],
            ["submit", w.PathOf("triage-v2.yaml")],
            ["releases", "--config", config],
            ["serve", "--config", config, "--urls", "http://127.0.0.1:0"],
        ];
        foreach (var command in commands)
        {
            var refused = await CliRunner.RunExpectingAsync(2, [.. command, "--db", w.Db]);
            Assert.Matches(@"ordo\.yaml:[56]:\d+: " + System.Text.RegularExpressions.Regex.Escape(problem + ", which does not exist (versions found: 1, 2)"), refused.Err);
            Assert.DoesNotContain("internal error", refused.Err, StringComparison.Ordinal);
        }

        Assert.False(File.Exists(w.Db));
    }

    [Fact]
    public async Task AReleaseOfAWorkflowThatDoesNotExist_IsALoadErrorNamingIt_NotAnOptionThatWasNeverGiven()
    {
        using var w = Workspace.Create();
        WriteTriage(w, "    stable: 1\n  nosuch: { stable: 1 }", """{"label": "billing"}""");

        foreach (var command in new[] { new[] { "releases" }, ["releases", "nosuch"], ["submit", "--workflow", "triage"] })
        {
            var refused = await CliRunner.RunExpectingAsync(2, [.. command, "--config", w.PathOf("ordo.yaml"), "--db", w.Db]);
            Assert.Contains("releases.nosuch: the project has no workflow 'nosuch' to release (its workflows: triage)", refused.Err, StringComparison.Ordinal);
            Assert.DoesNotContain("--workflow", refused.Err, StringComparison.Ordinal);
        }

        Assert.False(File.Exists(w.Db));
    }

    [Fact]
    public async Task AShadowOfTheStableVersion_IsRefusedLikeACanaryOfIt()
    {
        using var w = Workspace.Create();
        WriteTriage(w, "    stable: 1\n    shadow: { version: 1 }", """{"label": "billing"}""");

        var refused = await CliRunner.RunExpectingAsync(2, "releases", "--config", w.PathOf("ordo.yaml"), "--db", w.Db);

        Assert.Contains("releases.triage.shadow.version: the shadow of 'triage' is its stable version 1", refused.Err, StringComparison.Ordinal);
    }

    [Fact]
    public Task ACanaryWhoseGateRejectionsClimb_RollsItselfBack_AndEveryLaterJobByNameGetsTheStableVersion() => CanaryRollsBackAsync(postgres: null);

    [Fact]
    public async Task OnPostgreSql_ACanaryWhoseGateRejectionsClimb_RollsItselfBack_AndItsRecordIsKept()
    {
        var pg = Ordo.Postgres.Tests.PostgresTestServer.CreateDatabase("ordo_releases");
        try
        {
            await CanaryRollsBackAsync(pg);

            await using var store = new Ordo.Postgres.PostgresOrdoStore(pg);
            var record = Assert.Single(await store.ListReleaseRecordsAsync("triage"));
            Assert.Equal((Ordo.Storage.ReleaseRecordKinds.RolledBack, 2), (record.Kind, record.Version));
            Assert.Contains("gate_rejection_rate", record.Reason, StringComparison.Ordinal);
            var stats = await CliRunner.RunExpectingAsync(0, "stats", "--workflow", "triage", "--postgres", pg, "--json");
            var canary = Assert.Single(stats.Json().GetProperty("workflows").EnumerateArray(), v => v.GetProperty("version").GetInt32() == 2);
            Assert.Equal((4, 1.0), (canary.GetProperty("jobs").GetInt32(), canary.GetProperty("gate_rejection_rate").GetDouble()));
        }
        finally
        {
            Ordo.Postgres.Tests.PostgresTestServer.DropDatabase(pg);
        }
    }

    private static async Task CanaryRollsBackAsync(string? postgres)
    {
        using var w = Workspace.Create();
        // The canary's answers break the label contract: every canary job has a rejected artifact (and fails).
        WriteTriage(w, "    stable: 1\n    canary: { version: 2, share: 0.5, min_jobs: 4, rollback_when: { gate_rejection_rate: 0.25 } }", """{"label": 7}""");

        var before = new List<int>();
        for (var i = 0; i < 40 && (await ReleaseAsync(w, postgres)).GetProperty("canary").GetProperty("status").GetString() == "active"; i++)
        {
            before.Add(await SubmitAndRunAsync(w, postgres: postgres));
        }

        var canary = (await ReleaseAsync(w, postgres)).GetProperty("canary");
        Assert.Equal("rolled_back", canary.GetProperty("status").GetString());
        Assert.Equal(0, canary.GetProperty("share").GetDouble());
        Assert.Equal(4, canary.GetProperty("jobs").GetInt32());
        Assert.Equal(1.0, canary.GetProperty("gate_rejection_rate").GetDouble());
        Assert.Contains("gate_rejection_rate 1 is over its bound 0.25", canary.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.NotEqual(JsonValueKind.Null, canary.GetProperty("rolled_back_at").ValueKind);
        Assert.Equal(4, before.Count(v => v == 2));

        var after = new List<int>();
        for (var i = 0; i < 12; i++) after.Add(await SubmitAndRunAsync(w, postgres: postgres));
        Assert.All(after, v => Assert.Equal(1, v));
        Assert.Equal("rolled_back", (await ReleaseAsync(w, postgres)).GetProperty("canary").GetProperty("status").GetString());
        var human = await CliRunner.RunExpectingAsync(0, ["releases", "--config", w.PathOf("ordo.yaml"), .. Store(w, postgres)]);
        Assert.Contains("canary 2: ROLLED BACK at", human.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AHealthyCanary_Stays_AndKeepsItsShare()
    {
        using var w = Workspace.Create();
        WriteTriage(w, "    stable: 1\n    canary: { version: 2, share: 0.5, min_jobs: 4, rollback_when: { failure_rate: 0.1, gate_rejection_rate: 0.1, cost_per_job: 1.5 } }", """{"label": "billing"}""");

        var versions = new List<int>();
        for (var i = 0; i < 24; i++) versions.Add(await SubmitAndRunAsync(w));

        var canary = (await ReleaseAsync(w)).GetProperty("canary");
        Assert.Equal("active", canary.GetProperty("status").GetString());
        Assert.Equal(0.5, canary.GetProperty("share").GetDouble());
        Assert.Equal(0.0, canary.GetProperty("failure_rate").GetDouble());
        Assert.Equal(1.0, canary.GetProperty("cost_per_job_ratio").GetDouble());
        Assert.Equal(versions.Count(v => v == 2), canary.GetProperty("jobs").GetInt32());
        // Jobs kept going to the canary after it had been judged on min_jobs.
        Assert.True(versions.Count(v => v == 2) > 4, string.Join(",", versions));
        Assert.Contains(1, versions);
    }

    [Fact]
    public Task AHealthyCanary_IsJudgedOnItsEndedJobs_NotOnTheJobsStillQueued() => CanaryWithQueuedJobsAsync(postgres: null);

    [Fact]
    public async Task OnPostgreSql_AHealthyCanary_IsJudgedOnItsEndedJobs_NotOnTheJobsStillQueued()
    {
        var pg = Ordo.Postgres.Tests.PostgresTestServer.CreateDatabase("ordo_releases_queued");
        try
        {
            await CanaryWithQueuedJobsAsync(pg);
        }
        finally
        {
            Ordo.Postgres.Tests.PostgresTestServer.DropDatabase(pg);
        }
    }

    private static async Task CanaryWithQueuedJobsAsync(string? postgres)
    {
        using var w = Workspace.Create();
        // Version 2 is version 1 under another number: the same answers, the same cost.
        WriteTriage(w, "    stable: 1\n    canary: { version: 2, share: 0.5, min_jobs: 3, rollback_when: { cost_per_job: 1.5, gate_rejection_rate: 0.5 } }", """{"label": "billing"}""");
        // Until it is judged: three canary jobs ended, and a stable one to compare its cost with (job ids decide which is which).
        for (var i = 0; i < 40 && (await ReleaseAsync(w, postgres)).GetProperty("canary") is var c
            && (c.GetProperty("finished").GetInt32() < 3 || c.GetProperty("cost_per_job_ratio").ValueKind == JsonValueKind.Null); i++)
        {
            await SubmitAndRunAsync(w, postgres: postgres);
        }

        var judged = (await ReleaseAsync(w, postgres)).GetProperty("canary");
        Assert.Equal(1.0, judged.GetProperty("cost_per_job_ratio").GetDouble());
        var finished = judged.GetProperty("finished").GetInt32();

        // More jobs by name, none of them run: queued jobs have no cost and no outcome yet, and change no figure.
        for (var i = 0; i < 8; i++)
        {
            await CliRunner.RunExpectingAsync(0, ["submit", "--workflow", "triage", "--config", w.PathOf("ordo.yaml"), .. Store(w, postgres)]);
            var canary = (await ReleaseAsync(w, postgres)).GetProperty("canary");
            Assert.Equal("active", canary.GetProperty("status").GetString());
            Assert.Equal(1.0, canary.GetProperty("cost_per_job_ratio").GetDouble());
            Assert.Equal(0.0, canary.GetProperty("gate_rejection_rate").GetDouble());
            Assert.Equal(finished, canary.GetProperty("finished").GetInt32());
        }

        var human = await CliRunner.RunExpectingAsync(0, ["releases", "--config", w.PathOf("ordo.yaml"), .. Store(w, postgres)]);
        Assert.Contains("canary 2: active, share 0.5", human.Out, StringComparison.Ordinal);
        Assert.Contains("cost per job 1x stable", human.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("ROLLED BACK", human.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ACanaryWithNoEndedJob_ShowsNoRates_AndOneWithShare0_IsInactive_UnlessItWasRolledBack()
    {
        using var w = Workspace.Create();
        WriteTriage(w, "    stable: 1\n    canary: { version: 2, share: 1.0, min_jobs: 1, rollback_when: { gate_rejection_rate: 0.5 } }", """{"label": 7}""");
        await CliRunner.RunExpectingAsync(0, "submit", "--workflow", "triage", "--config", w.PathOf("ordo.yaml"), "--db", w.Db);

        var queued = (await ReleaseAsync(w)).GetProperty("canary");
        Assert.Equal((1, 0), (queued.GetProperty("jobs").GetInt32(), queued.GetProperty("finished").GetInt32()));
        Assert.Equal(JsonValueKind.Null, queued.GetProperty("gate_rejection_rate").ValueKind);
        Assert.Equal(JsonValueKind.Null, queued.GetProperty("failure_rate").ValueKind);
        var human = await CliRunner.RunExpectingAsync(0, "releases", "--config", w.PathOf("ordo.yaml"), "--db", w.Db);
        Assert.Contains("1 jobs, 0 finished; failure rate -, gate rejections -, cost per job -", human.Out, StringComparison.Ordinal);

        // Share 0 by hand: no job gets the canary, and it says so.
        WriteTriage(w, "    stable: 1\n    canary: { version: 2, share: 0, min_jobs: 1, rollback_when: { gate_rejection_rate: 0.5 } }", """{"label": 7}""");
        Assert.Equal("inactive", (await ReleaseAsync(w)).GetProperty("canary").GetProperty("status").GetString());
        human = await CliRunner.RunExpectingAsync(0, "releases", "--config", w.PathOf("ordo.yaml"), "--db", w.Db);
        Assert.Contains("canary 2: inactive (share 0)", human.Out, StringComparison.Ordinal);

        // Once its job ended past the bound, the rollback record holds, whatever its share is now.
        await CliRunner.RunAsync("resume", "--db", w.Db);
        WriteTriage(w, "    stable: 1\n    canary: { version: 2, share: 1.0, min_jobs: 1, rollback_when: { gate_rejection_rate: 0.5 } }", """{"label": 7}""");
        Assert.Equal("rolled_back", (await ReleaseAsync(w)).GetProperty("canary").GetProperty("status").GetString());
        WriteTriage(w, "    stable: 1\n    canary: { version: 2, share: 0, min_jobs: 1, rollback_when: { gate_rejection_rate: 0.5 } }", """{"label": 7}""");
        Assert.Equal("rolled_back", (await ReleaseAsync(w)).GetProperty("canary").GetProperty("status").GetString());
    }

    [Fact]
    public async Task ShadowJobs_ApplyNoWriteEffect_ProductionJobsApplyTheirsOnce_AndTheComparisonNamesTheDifferingArtifacts()
    {
        await using var server = await LoopbackServer.StartAsync((ctx, _) => LoopbackServer.JsonAsync(ctx, 200, "{\"noted\": true}"));
        using var w = Workspace.Create();
        w.Write("ordo.yaml", $$"""
            models:
              fast: { provider: scripted, fixtures: fixtures.yaml }
            tools: [tools.yaml]
            connections: { crm: { sqlite: crm.db, init: crm.sql } }
            tenants:
              default: { quota: { concurrent_jobs: 1 } }
            releases:
              triage:
                stable: 1
                shadow: { version: 2, share: 1.0 }
            """);
        w.Write("crm.sql", "CREATE TABLE notes(idempotency_key TEXT PRIMARY KEY, label TEXT);\n");
        w.Write("tools.yaml", $$"""
            tools:
              crm.notify: { kind: http, method: POST, url: "{{server.Address}}notify", effect: write }
              crm.note: { kind: sql, connection: crm, effect: irreversible, query: "INSERT INTO notes VALUES (@idempotency_key, @label)" }
            """);
        w.Write("fixtures.yaml", """
            responses:
              - { agent: classifier, content: '{"label": "billing"}' }
              - { agent: classifier_next, content: '{"label": "sales"}' }
            """);
        foreach (var (version, agent) in new[] { (1, "classifier"), (2, "classifier_next") })
        {
            w.Write($"triage-v{version}.yaml", $$"""
                ordo: 1
                workflow: triage
                version: {{version}}
                artifacts:
                  label: { schema: { type: object, required: [label], properties: { label: { type: string } } } }
                agents:
                  {{agent}}: { kind: llm, version: {{version}}, tier: fast, output: label }
                steps:
                  - { id: classify, agent: {{agent}}, next: notify }
                  - { id: notify, tool: crm.notify, args: { label: "${ artifacts.label.label }" }, next: note }
                  - { id: note, tool: crm.note, args: { label: "${ artifacts.label.label }" } }
                """);
        }

        const int Jobs = 8;
        for (var i = 0; i < Jobs; i++)
        {
            // With concurrent_jobs: 1, the shadow is submitted while its production job is queued: its submission is not counted.
            Assert.Equal(1, await SubmitAndRunAsync(w, everything: true));
        }

        Assert.Equal(Jobs, server.Requests.Count);
        Assert.Equal(Jobs, server.Requests.Select(r => r.IdempotencyKey).Distinct().Count());
        Assert.All(server.Requests, r => Assert.Contains("billing", r.Body, StringComparison.Ordinal));
        using (var c = new SqliteConnection($"Data Source={w.PathOf("crm.db")};Mode=ReadOnly;Pooling=False"))
        {
            c.Open();
            using var q = c.CreateCommand();
            q.CommandText = "SELECT count(*), count(DISTINCT idempotency_key), sum(label = 'sales') FROM notes";
            using var r = q.ExecuteReader();
            Assert.True(r.Read());
            Assert.Equal((Jobs, Jobs, 0L), (r.GetInt32(0), r.GetInt32(1), r.GetInt64(2)));
        }

        var shadow = (await ReleaseAsync(w)).GetProperty("shadow");
        Assert.Equal(2, shadow.GetProperty("version").GetInt32());
        Assert.Equal(Jobs, shadow.GetProperty("compared").GetInt32());
        // Every pair completed on both sides (the same outcome), with another label (other artifacts).
        Assert.Equal(Jobs, shadow.GetProperty("same_outcome").GetInt32());
        Assert.Equal(0, shadow.GetProperty("same_artifacts").GetInt32());
        Assert.Equal(0, shadow.GetProperty("identical").GetInt32());
        var human = await CliRunner.RunExpectingAsync(0, "releases", "--config", w.PathOf("ordo.yaml"), "--db", w.Db);
        Assert.Contains($"shadow 2 (share 1): {Jobs} compared: {Jobs} same outcome, 0 same artifacts, 0 identical", human.Out, StringComparison.Ordinal);
        var differences = shadow.GetProperty("differences").EnumerateArray().ToList();
        Assert.Equal(Jobs, differences.Count);
        foreach (var d in differences)
        {
            Assert.Equal(["completed", "completed"], d.GetProperty("outcome").EnumerateArray().Select(x => x.GetString()));
            Assert.Equal(["label"], d.GetProperty("artifacts").EnumerateArray().Select(x => x.GetString()));
            var events = (await CliRunner.RunExpectingAsync(0, "events", d.GetProperty("shadow_job_id").GetString()!, "--db", w.Db, "--json")).JsonLines();
            var skipped = events.Where(e => e.GetProperty("type").GetString() == "ToolCallSucceeded").Select(e => e.GetProperty("payload")).ToList();
            Assert.Equal(2, skipped.Count);
            Assert.All(skipped, p => Assert.True(p.GetProperty("skipped").GetBoolean()));

            // Each job names what it is: the shadow its production job, the production job nothing.
            var shown = (await CliRunner.RunExpectingAsync(0, "show", d.GetProperty("shadow_job_id").GetString()!, "--db", w.Db, "--json")).Json();
            Assert.Equal(d.GetProperty("job_id").GetString(), shown.GetProperty("shadow_of").GetString());
            var production = (await CliRunner.RunExpectingAsync(0, "show", d.GetProperty("job_id").GetString()!, "--db", w.Db, "--json")).Json();
            Assert.Equal(JsonValueKind.Null, production.GetProperty("shadow_of").ValueKind);
            var text = await CliRunner.RunExpectingAsync(0, "show", d.GetProperty("shadow_job_id").GetString()!, "--db", w.Db);
            Assert.Contains($"shadow of job: {d.GetProperty("job_id").GetString()}", text.Out, StringComparison.Ordinal);
        }

        var listed = (await CliRunner.RunExpectingAsync(0, "jobs", "--db", w.Db, "--json")).Json().EnumerateArray().ToList();
        Assert.Equal(Jobs, listed.Count(j => j.GetProperty("shadow").GetBoolean() && j.GetProperty("workflow").GetString() == "triage@2"));
        Assert.Equal(Jobs, listed.Count(j => !j.GetProperty("shadow").GetBoolean() && j.GetProperty("workflow").GetString() == "triage@1"));
        var table = (await CliRunner.RunExpectingAsync(0, "jobs", "--db", w.Db)).Out.Split('\n');
        Assert.Equal(Jobs, table.Count(l => l.Contains("triage@2 (shadow)", StringComparison.Ordinal)));
        Assert.DoesNotContain(table, l => l.Contains("triage@1 (shadow)", StringComparison.Ordinal));
    }
}
