using System.Text.Json;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Commands;

[Collection(SampleRuns.Name)]
public sealed class EventsCommandTests(SampleRunFixture sample)
{
    private static readonly string[] Fields = ["seq", "type", "job_id", "step_id", "attempt", "ts", "agent", "prompt_hash", "model", "policy", "payload", "hash", "prev_hash"];

    [Fact]
    public async Task EventsJson_PrintsOneHashChainedObjectPerLine()
    {
        var r = await CliRunner.RunExpectingAsync(0, "events", sample.JsonJobId, "--json", "--db", sample.Workspace.Db);
        var events = r.JsonLines();
        Assert.True(events.Count > 10, r.ToString());
        var previous = new string('0', 64);
        for (var i = 0; i < events.Count; i++)
        {
            var e = events[i];
            foreach (var f in Fields)
            {
                Assert.True(e.TryGetProperty(f, out _), $"line {i + 1} has no '{f}': {e}");
            }

            Assert.Equal(i + 1, e.GetProperty("seq").GetInt64());
            Assert.Equal(sample.JsonJobId, e.GetProperty("job_id").GetString());
            Assert.Matches(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$", e.GetProperty("ts").GetString());
            Assert.Equal(JsonValueKind.Object, e.GetProperty("payload").ValueKind);
            Assert.Matches("^[0-9a-f]{64}$", e.GetProperty("hash").GetString());
            Assert.Equal(previous, e.GetProperty("prev_hash").GetString());
            previous = e.GetProperty("hash").GetString()!;
        }

        Assert.Equal("JobSubmitted", events[0].GetProperty("type").GetString());
        Assert.Equal("JobCompleted", events[^1].GetProperty("type").GetString());
    }

    [Fact]
    public async Task EventsJson_ShowTheRejectedFirstExtractionAndTheRetryThatSucceeds()
    {
        var events = (await CliRunner.RunExpectingAsync(0, "events", sample.JsonJobId, "--json", "--db", sample.Workspace.Db)).JsonLines();
        var extract = events.Where(e => e.GetProperty("step_id").ValueKind == JsonValueKind.String && e.GetProperty("step_id").GetString() == "extract").ToList();

        int IndexOf(string type, int attempt) => extract.FindIndex(e => e.GetProperty("type").GetString() == type && e.GetProperty("attempt").GetInt32() == attempt);

        var rejected = IndexOf("ArtifactRejected", 1);
        var failed = IndexOf("StepFailed", 1);
        var retry = extract.FindIndex(e => e.GetProperty("type").GetString() == "StepScheduled" && e.GetProperty("attempt").GetInt32() == 2);
        var succeeded = IndexOf("StepSucceeded", 2);
        Assert.True(rejected >= 0 && failed > rejected && retry > failed && succeeded > retry, string.Join("\n", extract));
        Assert.Equal(-1, IndexOf("StepSucceeded", 1));

        var failure = extract[failed].GetProperty("payload");
        Assert.Equal("contract_violation", failure.GetProperty("error").GetString());
        Assert.True(failure.GetProperty("will_retry").GetBoolean());
        Assert.Equal("retry", extract[retry].GetProperty("payload").GetProperty("reason").GetString());

        var success = extract[succeeded];
        Assert.Equal("extractor@2", success.GetProperty("agent").GetString());
        Assert.StartsWith("sha256:", success.GetProperty("prompt_hash").GetString(), StringComparison.Ordinal);
        Assert.Equal(JsonValueKind.String, success.GetProperty("model").ValueKind);
        Assert.Equal(1, events.Count(e => e.GetProperty("type").GetString() == "StepSucceeded" && e.GetProperty("step_id").GetString() == "extract"));
    }

    [Fact]
    public async Task Events_HumanOutput_IsOneLinePerEvent()
    {
        var json = (await CliRunner.RunExpectingAsync(0, "events", sample.HumanJobId, "--json", "--db", sample.Workspace.Db)).OutLines.Count;
        var r = await CliRunner.RunExpectingAsync(0, "events", sample.HumanJobId, "--db", sample.Workspace.Db);
        Assert.Equal(json, r.OutLines.Count);
        Assert.Contains("JobSubmitted", r.OutLines[0], StringComparison.Ordinal);
        Assert.Contains("JobCompleted", r.OutLines[^1], StringComparison.Ordinal);
    }
}
