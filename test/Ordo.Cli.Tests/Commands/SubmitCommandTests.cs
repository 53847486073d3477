using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Commands;

public sealed class SubmitCommandTests
{
    [Fact]
    public async Task Submit_ThenResume_CompletesTheJob()
    {
        using var w = Workspace.WithSample();
        var submitted = await CliRunner.RunExpectingAsync(0, SampleJob.Args(w, "submit"));
        var id = Assert.Single(submitted.OutLines);
        Assert.Matches("^[0-9a-f]{32}$", id);

        // Submitted, not run: queued, and no step has started.
        var queued = (await CliRunner.RunExpectingAsync(0, "jobs", "--json", "--db", w.Db)).Json();
        Assert.Equal("queued", Assert.Single(queued.EnumerateArray()).GetProperty("status").GetString());
        var before = (await CliRunner.RunExpectingAsync(0, "events", id, "--json", "--db", w.Db)).JsonLines();
        Assert.Equal(["JobSubmitted", "StepScheduled"], before.Select(e => e.GetProperty("type").GetString()));

        var resumed = await CliRunner.RunExpectingAsync(0, "resume", id, "--json", "--db", w.Db);
        var j = resumed.Json();
        Assert.Equal(id, j.GetProperty("job_id").GetString());
        Assert.Equal("completed", j.GetProperty("status").GetString());
        Assert.Equal(5, j.GetProperty("steps").GetArrayLength());

        var after = (await CliRunner.RunExpectingAsync(0, "jobs", "--json", "--db", w.Db)).Json();
        Assert.Equal("completed", Assert.Single(after.EnumerateArray()).GetProperty("status").GetString());
    }

    [Fact]
    public async Task SubmitJson_PrintsTheJobRecord()
    {
        using var w = Workspace.WithSample();
        var j = (await CliRunner.RunExpectingAsync(0, SampleJob.Args(w, "submit", "--json", "--tenant", "acme"))).Json();
        Assert.Matches("^[0-9a-f]{32}$", j.GetProperty("job_id").GetString());
        Assert.Equal("invoice-reconciliation@1", j.GetProperty("workflow").GetString());
        Assert.Equal("acme", j.GetProperty("tenant").GetString());
        Assert.Equal("queued", j.GetProperty("status").GetString());
    }

    [Fact]
    public async Task Resume_EveryJob_RunsAllSubmittedJobs()
    {
        using var w = Workspace.WithSample();
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add(Assert.Single((await CliRunner.RunExpectingAsync(0, SampleJob.Args(w, "submit"))).OutLines));
        }

        var r = await CliRunner.RunExpectingAsync(0, "resume", "--db", w.Db);
        Assert.Contains("3 completed", r.Out, StringComparison.Ordinal);
        var jobs = (await CliRunner.RunExpectingAsync(0, "jobs", "--json", "--db", w.Db)).Json().EnumerateArray().ToList();
        Assert.Equal(ids.AsEnumerable().Reverse(), jobs.Select(j => j.GetProperty("job_id").GetString()));
        Assert.All(jobs, j => Assert.Equal("completed", j.GetProperty("status").GetString()));
    }
}
