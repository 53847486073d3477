using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Commands;

public sealed class CancelCommandTests
{
    [Fact]
    public async Task Cancel_SubmittedJob_ResumeDoesNotRunIt()
    {
        using var w = Workspace.WithSample();
        var id = Assert.Single((await CliRunner.RunExpectingAsync(0, SampleJob.Args(w, "submit"))).OutLines);

        var cancelled = await CliRunner.RunExpectingAsync(0, "cancel", id, "--reason", "wrong batch", "--db", w.Db);
        Assert.Contains($"job {id} cancelled", cancelled.Out, StringComparison.Ordinal);

        // Resuming the job reports it cancelled, with the exit code of a cancelled job (5), and runs nothing.
        var resumed = await CliRunner.RunExpectingAsync(5, "resume", id, "--json", "--db", w.Db);
        Assert.Equal("cancelled", resumed.Json().GetProperty("status").GetString());
        await CliRunner.RunExpectingAsync(0, "resume", "--db", w.Db);

        var jobs = (await CliRunner.RunExpectingAsync(0, "jobs", "--json", "--db", w.Db)).Json();
        Assert.Equal("cancelled", Assert.Single(jobs.EnumerateArray()).GetProperty("status").GetString());
        var types = (await CliRunner.RunExpectingAsync(0, "events", id, "--json", "--db", w.Db)).JsonLines().Select(e => e.GetProperty("type").GetString()).ToList();
        Assert.Equal(["JobSubmitted", "StepScheduled", "JobCancelled"], types);

        // A second cancel changes nothing.
        var again = await CliRunner.RunExpectingAsync(0, "cancel", id, "--json", "--db", w.Db);
        Assert.False(again.Json().GetProperty("cancelled").GetBoolean());
        Assert.Equal(3, (await CliRunner.RunExpectingAsync(0, "events", id, "--json", "--db", w.Db)).OutLines.Count);
    }

    [Fact]
    public async Task Cancel_CompletedJob_ChangesNothing()
    {
        using var w = Workspace.WithSample();
        var id = (await CliRunner.RunExpectingAsync(0, SampleJob.Args(w, "run", "--json"))).Json().GetProperty("job_id").GetString()!;
        var before = w.DbFingerprint();
        var r = await CliRunner.RunExpectingAsync(0, "cancel", id, "--db", w.Db);
        Assert.Contains("already ended (completed)", r.Out, StringComparison.Ordinal);
        Assert.Equal(before, w.DbFingerprint());
    }
}
