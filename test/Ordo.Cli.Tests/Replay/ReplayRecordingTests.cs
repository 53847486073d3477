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
}
