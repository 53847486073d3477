using System.Globalization;
using System.Text.Json;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Commands;

[Collection(SampleRuns.Name)]
public sealed class JobsCommandTests(SampleRunFixture sample)
{
    [Fact]
    public async Task JobsJson_ListsEveryJobNewestFirstWithTheDocumentedFields()
    {
        var r = await CliRunner.RunExpectingAsync(0, "jobs", "--json", "--db", sample.Workspace.Db);
        Assert.Single(r.OutLines);
        var jobs = r.Json().EnumerateArray().ToList();
        Assert.Equal([sample.JsonJobId, sample.HumanJobId], jobs.Select(j => j.GetProperty("job_id").GetString()));
        foreach (var j in jobs)
        {
            Assert.Equal("invoice-reconciliation@1", j.GetProperty("workflow").GetString());
            Assert.Equal("default", j.GetProperty("tenant").GetString());
            Assert.Equal("completed", j.GetProperty("status").GetString());
            Assert.Equal(JsonValueKind.Null, j.GetProperty("parent_job_id").ValueKind);
            Assert.Matches(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$", j.GetProperty("created_at").GetString());
            Assert.Matches(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$", j.GetProperty("updated_at").GetString());
            Assert.True(Time(j, "updated_at") >= Time(j, "created_at"));
        }

        Assert.True(Time(jobs[0], "created_at") >= Time(jobs[1], "created_at"));
    }

    [Fact]
    public async Task Jobs_FilteredByStatus_ListsOnlyThoseJobs()
    {
        var none = await CliRunner.RunExpectingAsync(0, "jobs", "--status", "failed", "--json", "--db", sample.Workspace.Db);
        Assert.Equal(0, none.Json().GetArrayLength());
        var human = await CliRunner.RunExpectingAsync(0, "jobs", "--status", "completed", "--db", sample.Workspace.Db);
        Assert.Contains(sample.HumanJobId, human.Out, StringComparison.Ordinal);
        Assert.Contains(sample.JsonJobId, human.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Jobs_UnknownStatus_IsInvalidInput()
    {
        var r = await CliRunner.RunExpectingAsync(2, "jobs", "--status", "done", "--db", sample.Workspace.Db);
        Assert.Contains("--status", r.Err, StringComparison.Ordinal);
    }

    private static DateTimeOffset Time(JsonElement job, string name)
        => DateTimeOffset.Parse(job.GetProperty(name).GetString()!, CultureInfo.InvariantCulture);
}
