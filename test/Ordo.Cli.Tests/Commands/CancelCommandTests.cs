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
    public async Task Cancel_FromAnotherProcess_StopsALoopThatCommitsFasterThanACancelIsPlanned()
    {
        using var w = Workspace.Create();
        // Hundreds of thousands of transforms: the job's log moves on every few milliseconds for as long as it runs.
        var workflow = w.Write("long.yaml", """
            ordo: 1
            workflow: long
            version: 1
            input: { type: object, properties: { n: { type: integer } } }
            steps:
              - id: init
                transform: { set: { c: "${ 0 }" } }
                next: inc
              - id: inc
                transform: { set: { c: "${ artifacts.c + 1 }" } }
                loop: { max_iterations: 1000000 }
                next: [ { when: "artifacts.c < input.n", to: inc } ]

            """);
        var input = w.Write("in.json", """{ "n": 400000 }""");
        using var run = OrdoProcess.Start(w.Root, "run", workflow, "--input", input, "--db", w.Db, "--json");
        var id = await RunningJobAsync(w, run);
        await Task.Delay(TimeSpan.FromSeconds(1));

        var cancelled = await CliRunner.RunExpectingAsync(0, "cancel", id, "--reason", "user stop", "--db", w.Db);
        Assert.Contains($"job {id} cancelled", cancelled.Out, StringComparison.Ordinal);
        Assert.Equal(5, await run.WaitForExitAsync(TimeSpan.FromSeconds(60)));

        var events = (await CliRunner.RunExpectingAsync(0, "events", id, "--json", "--db", w.Db)).JsonLines();
        Assert.Equal("JobCancelled", events[^1].GetProperty("type").GetString());
        Assert.True(events.Count(e => e.GetProperty("type").GetString() == "StepSucceeded") < 400000, "the loop ran to its end");
        await CliRunner.RunExpectingAsync(0, "audit", "verify", "--all", "--db", w.Db);
    }

    [Fact]
    public async Task Cancel_OfAParent_CancelsItsRunningChildJobs_WhileEveryWorkerIsBusyWithThem()
    {
        using var w = Workspace.Create();
        w.Write("child.yaml", """
            ordo: 1
            workflow: child
            version: 1
            steps:
              - id: init
                transform: { set: { c: "${ 0 }" } }
                next: inc
              - id: inc
                transform: { set: { c: "${ artifacts.c + 1 }" } }
                loop: { max_iterations: 1000000 }
                next: [ { when: "artifacts.c < 300000", to: inc } ]

            """);
        // Four children, as many at once: the two workers of the run are both kept busy by child loops.
        var parent = w.Write("parent.yaml", """
            ordo: 1
            workflow: parent
            version: 1
            steps:
              - id: each
                foreach: "${ [1, 2, 3, 4] }"
                do: child@1
                max_concurrency: 4

            """);
        using var run = OrdoProcess.Start(w.Root, "run", parent, "--db", w.Db, "--workers", "2", "--quiet");
        var id = await RunningJobAsync(w, run);
        await Task.Delay(TimeSpan.FromSeconds(2));

        await CliRunner.RunExpectingAsync(0, "cancel", id, "--db", w.Db);
        Assert.Equal(5, await run.WaitForExitAsync(TimeSpan.FromSeconds(60)));

        var jobs = (await CliRunner.RunExpectingAsync(0, "jobs", "--json", "--db", w.Db)).Json().EnumerateArray().ToList();
        Assert.Equal(5, jobs.Count);
        Assert.All(jobs, j => Assert.True(j.GetProperty("status").GetString() == "cancelled", j.ToString()));
        await CliRunner.RunExpectingAsync(0, "audit", "verify", "--all", "--db", w.Db);
    }

    /// <summary>The id of the job <paramref name="run"/> started, once it is running.</summary>
    private static async Task<string> RunningJobAsync(Workspace w, OrdoProcess run)
    {
        for (var i = 0; i < 600; i++)
        {
            Assert.False(run.HasExited, "ordo run ended before it could be cancelled\n" + run.Err);
            if (File.Exists(w.Db)
                && (await CliRunner.RunAsync("jobs", "--status", "running", "--json", "--db", w.Db)) is { ExitCode: 0 } jobs
                && jobs.Json().EnumerateArray().LastOrDefault() is { ValueKind: System.Text.Json.JsonValueKind.Object } job)
            {
                return job.GetProperty("job_id").GetString()!;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException("the job did not start running within a minute");
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
