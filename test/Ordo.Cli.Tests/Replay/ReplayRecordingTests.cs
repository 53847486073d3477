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
}
