using System.Text.Json;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Commands;

[Collection(SampleRuns.Name)]
public sealed class ShowCommandTests(SampleRunFixture sample)
{
    [Fact]
    public async Task Show_PrintsTheSummaryAndTheTimeline()
    {
        var r = await CliRunner.RunExpectingAsync(0, "show", sample.HumanJobId, "--db", sample.Workspace.Db);
        Assert.Contains($"job {sample.HumanJobId}  invoice-reconciliation@1  tenant default  completed", r.Out, StringComparison.Ordinal);
        foreach (var step in new[] { "extract", "lookup", "reconcile", "flag", "post" })
        {
            Assert.Contains(r.OutLines, l => l.StartsWith(step + " ", StringComparison.Ordinal) && l.Contains("succeeded", StringComparison.Ordinal));
        }

        Assert.Contains(r.OutLines, l => l.StartsWith("invoice_lines", StringComparison.Ordinal) && l.Contains("verified", StringComparison.Ordinal));
        Assert.Contains("timeline", r.Out, StringComparison.Ordinal);
        Assert.Contains("ArtifactRejected", r.Out, StringComparison.Ordinal);
        Assert.Contains("JobCompleted", r.Out, StringComparison.Ordinal);
        Assert.Contains($"ordo audit verify {sample.HumanJobId}", r.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ShowJson_PrintsTheRunObjectWithTheTimeline()
    {
        var r = await CliRunner.RunExpectingAsync(0, "show", sample.JsonJobId, "--json", "--db", sample.Workspace.Db);
        Assert.Single(r.OutLines);
        var j = r.Json();
        var events = (await CliRunner.RunExpectingAsync(0, "events", sample.JsonJobId, "--json", "--db", sample.Workspace.Db)).OutLines.Count;

        Assert.Equal(sample.JsonJobId, j.GetProperty("job_id").GetString());
        Assert.Equal("invoice-reconciliation@1", j.GetProperty("workflow").GetString());
        Assert.Equal("completed", j.GetProperty("status").GetString());
        Assert.Equal("default", j.GetProperty("tenant").GetString());
        Assert.Equal(JsonValueKind.Null, j.GetProperty("parent_job_id").ValueKind);
        Assert.Equal(5, j.GetProperty("steps").GetArrayLength());
        Assert.Equal(3, j.GetProperty("artifacts").EnumerateObject().Count());
        Assert.Equal(3, j.GetProperty("tool_calls").GetArrayLength());
        Assert.Equal(2, j.GetProperty("model_calls").GetArrayLength());
        Assert.Equal(events, j.GetProperty("timeline").GetArrayLength());

        // show reports the same job as run --json did.
        var run = sample.JsonRun.Json();
        foreach (var field in new[] { "job_id", "workflow", "status", "reason", "artifacts", "usage" })
        {
            Assert.Equal(run.GetProperty(field).GetRawText(), j.GetProperty(field).GetRawText());
        }
    }
}
