using System.Text.Json;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Replay;

/// <summary>
/// What a replay compares: a shadow job replays as one, a reordered argument mapping changes nothing, a definition of
/// another workflow is refused, and a job whose recording has not ended is compared as far as it goes.
/// </summary>
public sealed class ReplayRecordingTests
{
    [Fact]
    public async Task AShadowJob_ReplaysAsMatching_FromTheStoreAndFromItsExport()
    {
        using var w = ReplayProject.Create(shadow: true);
        await CliRunner.RunExpectingAsync(0, "submit", "--workflow", "billing", "--config", w.PathOf("ordo.yaml"), "--input", w.PathOf("input.json"), "--db", w.Db);
        await CliRunner.RunExpectingAsync(0, "resume", "--db", w.Db);
        var jobs = (await CliRunner.RunExpectingAsync(0, "jobs", "--db", w.Db, "--json")).Json().EnumerateArray().ToList();
        var shadow = Assert.Single(jobs, j => j.GetProperty("workflow").GetString() == "billing@2").GetProperty("job_id").GetString()!;
        var events = (await CliRunner.RunExpectingAsync(0, "events", shadow, "--db", w.Db, "--json")).JsonLines();
        Assert.True(events[0].GetProperty("payload").TryGetProperty("shadow_of", out _));

        var fromStore = await CliRunner.RunExpectingAsync(0, "replay", shadow, "--db", w.Db, "--json");
        Assert.Equal(JsonValueKind.Null, fromStore.Json().GetProperty("divergence").ValueKind);
        await CliRunner.RunExpectingAsync(0, "export", shadow, "--db", w.Db, "--out", w.PathOf("suite/shadow.json"));
        var fromFile = await CliRunner.RunExpectingAsync(0, "replay", w.PathOf("suite/shadow.json"));
        Assert.Contains("matches the recording", fromFile.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReorderedArguments_OfAToolStep_ChangeNothing_ButAnotherValueIsARequestDivergence()
    {
        using var w = ReplayProject.Create();
        var job = await ReplayProject.RunAsync(w);
        var reordered = ReplayProject.Workflow(w, "reordered.yaml", args: """{ amount: "${ artifacts.label.amount }", customer: "${ input.customer }" }""");
        var changed = ReplayProject.Workflow(w, "changed.yaml", args: """{ amount: 43, customer: "${ input.customer }" }""");

        var same = await CliRunner.RunExpectingAsync(0, "replay", job, "--db", w.Db, "--workflow", reordered, "--json");
        Assert.Equal(JsonValueKind.Null, same.Json().GetProperty("divergence").ValueKind);

        var other = await CliRunner.RunExpectingAsync(6, "replay", job, "--db", w.Db, "--workflow", changed, "--json");
        var divergence = other.Json().GetProperty("divergence");
        Assert.Equal(("charge", "request"), (divergence.GetProperty("step").GetString(), divergence.GetProperty("what").GetString()));
        Assert.Contains("\"amount\":43", divergence.GetProperty("replayed").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AWorkflowOfAnotherName_IsRefused_FromTheStore_FromAFile_AndInASuiteWithNoJobOfIt()
    {
        using var w = ReplayProject.Create();
        var job = await ReplayProject.RunAsync(w);
        var other = ReplayProject.Workflow(w, "other.yaml", name: "refunds");
        await CliRunner.RunExpectingAsync(0, "export", job, "--db", w.Db, "--out", w.PathOf("suite/job.json"));

        foreach (var target in new[] { job, w.PathOf("suite/job.json") })
        {
            var refused = await CliRunner.RunExpectingAsync(2, "replay", target, "--db", w.Db, "--workflow", other);
            Assert.Contains("'refunds'", refused.Err, StringComparison.Ordinal);
            Assert.Contains("'billing'", refused.Err, StringComparison.Ordinal);
            Assert.Contains(job, refused.Err, StringComparison.Ordinal);
            Assert.DoesNotContain("matches", refused.Out, StringComparison.Ordinal);
        }

        var suite = await CliRunner.RunExpectingAsync(2, "replay", "--suite", w.PathOf("suite"), "--workflow", other);
        Assert.Contains("no job of the suite", suite.Err, StringComparison.Ordinal);
        Assert.Contains("'refunds'", suite.Err, StringComparison.Ordinal);
        Assert.Contains("'billing'", suite.Err, StringComparison.Ordinal);

        // In a suite holding jobs of both, --workflow applies to the jobs of its name; the others replay as recorded.
        var refunds = await ReplayProject.RunAsync(w, "other.yaml");
        await CliRunner.RunExpectingAsync(0, "export", refunds, "--db", w.Db, "--out", w.PathOf("suite/refunds.json"));
        var mixed = await CliRunner.RunExpectingAsync(0, "replay", "--suite", w.PathOf("suite"), "--workflow", other, "--json");
        Assert.Equal(["billing@1", "refunds@1"], mixed.Json().EnumerateArray().Select(r => r.GetProperty("workflow").GetString()).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task AJobThatNeverRan_MatchesItsRecordingSoFar_AsAPausedJobDoes()
    {
        using var w = ReplayProject.Create();
        var submitted = await CliRunner.RunExpectingAsync(0, "submit", w.PathOf("billing-v1.yaml"), "--input", w.PathOf("input.json"), "--db", w.Db, "--json");
        var job = submitted.Json().GetProperty("job_id").GetString()!;
        await CliRunner.RunExpectingAsync(0, "export", job, "--db", w.Db, "--out", w.PathOf("queued.json"));

        foreach (var target in new[] { job, w.PathOf("queued.json") })
        {
            var replay = await CliRunner.RunExpectingAsync(0, "replay", target, "--db", w.Db, "--json");
            var report = replay.Json();
            Assert.Equal(JsonValueKind.Null, report.GetProperty("divergence").ValueKind);
            Assert.False(report.GetProperty("recording_ended").GetBoolean());
            Assert.Equal("queued", report.GetProperty("recorded_status").GetString());
            Assert.Equal(0, report.GetProperty("replayed_steps").GetInt32());
        }

        var human = await CliRunner.RunExpectingAsync(0, "replay", job, "--db", w.Db);
        Assert.Contains("matches the recording so far: the job had not ended (queued); its recording stops after 2 events and 0 steps", human.Out, StringComparison.Ordinal);

        // Once it ran, the whole job is compared.
        await CliRunner.RunExpectingAsync(0, "resume", job, "--db", w.Db);
        var ended = (await CliRunner.RunExpectingAsync(0, "replay", job, "--db", w.Db, "--json")).Json();
        Assert.True(ended.GetProperty("recording_ended").GetBoolean());
        Assert.Equal(2, ended.GetProperty("replayed_steps").GetInt32());
    }

    [Fact]
    public async Task ACancelledJob_MatchesItsRecordingUpToItsCancellation_FromTheStoreAndFromAnExport()
    {
        using var w = ReplayProject.Create();
        var submitted = await CliRunner.RunExpectingAsync(0, "submit", w.PathOf("billing-v1.yaml"), "--input", w.PathOf("input.json"), "--db", w.Db, "--json");
        var job = submitted.Json().GetProperty("job_id").GetString()!;
        await CliRunner.RunExpectingAsync(0, "cancel", job, "--db", w.Db);
        await CliRunner.RunExpectingAsync(0, "export", job, "--db", w.Db, "--out", w.PathOf("cancelled.json"));

        foreach (var target in new[] { job, w.PathOf("cancelled.json") })
        {
            var report = (await CliRunner.RunExpectingAsync(0, "replay", target, "--db", w.Db, "--json")).Json();
            Assert.Equal(JsonValueKind.Null, report.GetProperty("divergence").ValueKind);
            Assert.Equal("cancelled", report.GetProperty("recorded_status").GetString());
            Assert.True(report.GetProperty("up_to_cancellation").GetBoolean());
            Assert.Equal(0, report.GetProperty("replayed_steps").GetInt32());
        }

        var human = await CliRunner.RunExpectingAsync(0, "replay", job, "--db", w.Db);
        Assert.Contains("matches the recording up to its cancellation", human.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task APausedJob_IsComparedAsFarAsItsRecordingGoes_AndAChangeBeforeThePauseStillDiverges()
    {
        using var w = Workspace.WithSample("patterns/approval");
        var run = await CliRunner.RunExpectingAsync(4, "run", w.PathOf("sample/approval.yaml"), "--input", w.PathOf("sample/input.json"), "--db", w.Db, "--json", "--as", "alice");
        var job = run.Json().GetProperty("job_id").GetString()!;

        var same = (await CliRunner.RunExpectingAsync(0, "replay", job, "--db", w.Db, "--json")).Json();
        Assert.False(same.GetProperty("recording_ended").GetBoolean());
        Assert.Equal("waiting_approval", same.GetProperty("recorded_status").GetString());

        var prompt = w.PathOf("sample/prompts/review.md");
        File.WriteAllText(prompt, File.ReadAllText(prompt) + "\nBe brief.\n");
        var changed = await CliRunner.RunExpectingAsync(6, "replay", job, "--db", w.Db, "--workflow", w.PathOf("sample/approval.yaml"), "--json");
        var divergence = changed.Json().GetProperty("divergence");
        Assert.Equal(("review", "prompt_hash"), (divergence.GetProperty("step").GetString(), divergence.GetProperty("what").GetString()));
    }
}
