using System.Text.Json.Nodes;
using Ordo.Engine;
using Ordo.Events;
using Ordo.Replay;
using Ordo.Testing;
using Ordo.Tests.Engine;
using Ordo.Tests.Workflows;
using Ordo.Workflows;

namespace Ordo.Tests.Replay;

/// <summary>
/// <see cref="JobReplayer"/> and <see cref="JobExport"/> on jobs of a transform-only workflow: what a replay compares
/// (shadow jobs, member order, recordings that stop before the job's end) and how an export reads back.
/// </summary>
public sealed class JobReplayerTests : IDisposable
{
    private readonly TempWorkspace _ws = new();

    public void Dispose() => _ws.Dispose();

    private Task<WorkflowDefinition> LoadAsync(string name = "totals", string set = "{ total: { sum: \"${ input.a + input.b }\", note: \"${ input.note }\" } }")
    {
        _ws.Write(name + ".yaml", $$"""
            ordo: 1
            workflow: {{name}}
            version: 1
            steps:
              - { id: sum, transform: { set: {{set}} } }
            """);
        return _ws.LoadAsync(name + ".yaml");
    }

    private static readonly JsonNode Input = JsonNode.Parse("""{ "a": 1, "b": 2, "note": "+31 20 <é>" }""")!;

    private static async Task<ReplayReport> ReplayAsync(JobRecording recording, WorkflowDefinition? workflow = null)
    {
        await using var store = new InMemoryOrdoStore();
        return await JobReplayer.ReplayAsync(recording, new ReplayOptions { Store = store, Workflow = workflow });
    }

    private static async Task<JobRecording> RunAsync(EngineHarness h, WorkflowDefinition workflow, SubmitOptions? options = null, bool run = true)
    {
        var job = await h.Runtime.SubmitAsync(workflow, Json.Of(Input), options ?? new SubmitOptions());
        if (run) await h.Runtime.RunAsync(new RunRequest { RootJobId = job.JobId, UntilIdle = true });
        return (await JobRecording.ReadAsync(h.Store, job.JobId))!;
    }

    [Fact]
    public async Task AShadowJob_ReplaysAsAShadowOfTheSameJob_AndMatches()
    {
        await using var h = new EngineHarness();
        var workflow = await LoadAsync();
        var recording = await RunAsync(h, workflow, new SubmitOptions { ShadowOf = JobId.New(DateTimeOffset.UnixEpoch) });
        Assert.NotNull(recording.Root.Submitted.ShadowOf);

        var report = await ReplayAsync(recording);

        Assert.Null(report.Divergence);
    }

    [Fact]
    public async Task MembersInAnotherOrder_AreTheSameValue_ButAnotherValueIsAnOutputDivergence()
    {
        await using var h = new EngineHarness();
        var recording = await RunAsync(h, await LoadAsync());

        var reordered = await ReplayAsync(recording, await LoadAsync(set: "{ total: { note: \"${ input.note }\", sum: \"${ input.a + input.b }\" } }"));
        var changed = await ReplayAsync(recording, await LoadAsync(set: "{ total: { sum: \"${ input.a * input.b }\", note: \"${ input.note }\" } }"));

        Assert.Null(reordered.Divergence);
        Assert.Equal(("sum", "output"), (changed.Divergence?.Step, changed.Divergence?.What));
    }

    [Fact]
    public async Task AWorkflowOfAnotherName_IsRefused()
    {
        await using var h = new EngineHarness();
        var recording = await RunAsync(h, await LoadAsync());

        var e = await Assert.ThrowsAsync<OrdoRefusedException>(async () => await ReplayAsync(recording, await LoadAsync("refunds")));

        Assert.Contains("'totals'", e.Message, StringComparison.Ordinal);
        Assert.Contains("'refunds'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AJobThatNeverRan_MatchesItsRecordingSoFar_AndSaysItHasNotEnded()
    {
        await using var h = new EngineHarness();
        var recording = await RunAsync(h, await LoadAsync(), run: false);

        var report = await ReplayAsync(recording);

        Assert.Null(report.Divergence);
        Assert.False(report.RecordingEnded);
        Assert.Equal("queued", report.RecordedStatus);
        Assert.Equal(2, report.RecordedEvents);
        Assert.Equal(0, report.ReplayedSteps);
    }

    [Fact]
    public async Task AnExport_ReadsBackEveryPayloadAsStored_AndRefusesAnEditedEvent()
    {
        await using var h = new EngineHarness();
        var recording = await RunAsync(h, await LoadAsync());
        var text = JobExport.Write(recording, s => s);

        var read = JobExport.Parse(text, "job.json");
        Assert.Equal(recording.Root.Events.Select(e => e.PayloadText), read.Root.Events.Select(e => e.PayloadText));
        Assert.Equal("job.json", read.File);

        // An export of an earlier version: payloads indented, text unescaped.
        var indented = JsonNode.Parse(text)!.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        Assert.Contains("<é>", indented, StringComparison.Ordinal);
        Assert.Equal(recording.Root.Events.Select(e => e.PayloadText), JobExport.Parse(indented, "old.json").Root.Events.Select(e => e.PayloadText));

        var edited = JsonNode.Parse(text)!;
        var events = edited["job"]!["events"]!.AsArray();
        var succeeded = events.Single(e => (string?)e!["type"] == EventTypes.StepSucceeded)!;
        succeeded["payload"]!["extra"] = 1;
        var e = Assert.Throws<OrdoValidationException>(() => JobExport.Parse(edited.ToJsonString(), "edited.json"));
        var problem = Assert.Single(e.Problems);
        Assert.Equal("edited.json", problem.File);
        Assert.Equal($"job.events[{events.IndexOf(succeeded)}]", problem.Path);
        Assert.Contains($"job {recording.Root.Job.JobId}, event {(long)succeeded["seq"]!} (StepSucceeded): the hash chain breaks here", problem.Message, StringComparison.Ordinal);

        // The job's own fields are not hashed: they must agree with its JobSubmitted event, which is.
        var renamed = JsonNode.Parse(text)!;
        renamed["job"]!["workflow"] = "refunds";
        var r = Assert.Throws<OrdoValidationException>(() => JobExport.Parse(renamed.ToJsonString(), "renamed.json"));
        Assert.Equal("job.workflow", Assert.Single(r.Problems).Path);
        Assert.Contains("'refunds'", r.Message, StringComparison.Ordinal);
        Assert.Contains("'totals'", r.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ANonExport_IsRefusedWithoutQuotingIt()
    {
        var e = Assert.Throws<OrdoValidationException>(() => JobExport.Parse("root:x:0:0:root:/root:/bin/bash\n", "passwd.json"));
        Assert.DoesNotContain("root", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("'r'", e.Message, StringComparison.Ordinal);

        var broken = Assert.Throws<OrdoValidationException>(() => JobExport.Parse("{ \"ordo_export\": 1 x", "broken.json"));
        Assert.DoesNotContain("'x'", broken.Message, StringComparison.Ordinal);
        Assert.Contains("broken.json:1:", broken.Message, StringComparison.Ordinal);
    }
}
