using System.Text.Json;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Durability;

/// <summary>
/// Ctrl-C (SIGINT) or SIGTERM stops a real <c>ordo run</c> process gracefully: the step in flight finishes, no new one
/// starts, the exit code is 130 and the message says how to resume; <c>ordo resume</c> then finishes the job without
/// running any step twice.
/// </summary>
public sealed class GracefulStopTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private static readonly string[] StepIds = ["a", "b", "c", "d", "e", "f"];

    [Theory]
    [InlineData("INT")]
    [InlineData("TERM")]
    public async Task Signal_StopsRunAndResume_ResumeFinishesWithoutRepeatingAStep(string signal)
    {
        using var w = Workspace.Create();
        var workflow = WriteSlowWorkflow(w);
        // Not the default ordo.db of the working directory, so the resume hints must name it.
        var db = w.PathOf("state/slow.db");

        // 1. ordo run, stopped after its first step.
        string jobId;
        using (var run = OrdoProcess.Start(w.Root, "run", workflow, "--db", db))
        {
            Assert.True(await run.WaitForOutputAsync(lines => lines.Any(l => l.TrimStart().StartsWith('✓')), Patience), $"no step finished\n{string.Join('\n', run.OutLines)}\n{run.Err}");
            await run.SignalAsync(signal);
            var code = await run.WaitForExitAsync(Patience);
            var shown = $"{run.CommandLine}\n--- stdout\n{string.Join('\n', run.OutLines)}\n--- stderr\n{run.Err}";
            Assert.True(code == 130, $"expected exit code 130 after SIG{signal}\n{shown}");
            jobId = run.OutLines[0]["ordo: running job ".Length..].Split(' ')[0];
            Assert.Contains($"continue it with: ordo resume {jobId} --db state/slow.db", run.Err, StringComparison.Ordinal);
            Assert.DoesNotContain("internal error", run.Err, StringComparison.Ordinal);
        }

        var afterRun = await SucceededStepsAsync(db, jobId);
        Assert.InRange(afterRun.Count, 1, StepIds.Length - 1);
        Assert.Equal("running", await StatusAsync(db, jobId));

        // 2. ordo resume (every job), stopped the same way after one more step.
        List<string> afterResume;
        using (var resume = OrdoProcess.Start(w.Root, "resume", "--db", db))
        {
            if (await resume.WaitForOutputAsync(lines => lines.Any(l => l.TrimStart().StartsWith('✓')), Patience))
            {
                await resume.SignalAsync(signal);
            }

            var code = await resume.WaitForExitAsync(Patience);
            var shown = $"{resume.CommandLine}\n--- stdout\n{string.Join('\n', resume.OutLines)}\n--- stderr\n{resume.Err}";
            Assert.True(code is 130 or 0, shown);
            if (code == 130)
            {
                Assert.Contains("continue with: ordo resume --db state/slow.db", resume.Err, StringComparison.Ordinal);
            }

            // Progress shows what this process did, not the steps an earlier process had finished.
            Assert.Empty(ProgressedSteps(resume.OutLines).Intersect(afterRun));
            afterResume = await SucceededStepsAsync(db, jobId);
        }

        // 3. resume to the end.
        var done = await CliRunner.RunExpectingAsync(0, "resume", jobId, "--db", db);
        Assert.Contains($"job {jobId}  slow@1  tenant default  completed", done.Out, StringComparison.Ordinal);
        Assert.Equal(StepIds.Except(afterResume), ProgressedSteps(done.OutLines));

        var events = (await CliRunner.RunExpectingAsync(0, "events", jobId, "--json", "--db", db)).JsonLines();
        var succeeded = events.Where(e => e.GetProperty("type").GetString() == "StepSucceeded").Select(e => e.GetProperty("step_id").GetString()).ToList();
        Assert.Equal(StepIds, succeeded);
        Assert.DoesNotContain(events, e => e.GetProperty("type").GetString() is "StepFailed" or "JobFailed");
        await CliRunner.RunExpectingAsync(0, "audit", "verify", jobId, "--db", db);
    }

    private static string WriteSlowWorkflow(Workspace w)
    {
        w.Write("ordo.yaml", $"plugins: [\"{TestPaths.TestPluginDll}\"]\n");
        var steps = string.Join("\n", StepIds.Select((id, i) =>
            $"  - {{ id: {id}, agent: sleeper, input: {{ ms: 300 }}{(i + 1 < StepIds.Length ? $", next: {StepIds[i + 1]}" : "")} }}"));
        return w.Write("slow.yaml", $$"""
            ordo: 1
            workflow: slow
            version: 1
            agents:
              sleeper: { kind: code, version: 1, type: "Ordo.TestPlugins.Sleeper" }
            steps:
            {{steps}}

            """);
    }

    /// <summary>The steps of the <c>✓ STEP (attempt N)</c> progress lines.</summary>
    private static List<string> ProgressedSteps(IReadOnlyList<string> lines)
        => lines.Select(l => l.Trim()).Where(l => l.StartsWith('✓')).Select(l => l.Split(' ')[1]).ToList();

    private static async Task<List<string>> SucceededStepsAsync(string db, string jobId)
        => (await CliRunner.RunExpectingAsync(0, "events", jobId, "--json", "--db", db)).JsonLines()
            .Where(e => e.GetProperty("type").GetString() == "StepSucceeded")
            .Select(e => e.GetProperty("step_id").GetString()!)
            .ToList();

    private static async Task<string?> StatusAsync(string db, string jobId)
        => (await CliRunner.RunExpectingAsync(0, "jobs", "--json", "--db", db)).Json().EnumerateArray()
            .Single(j => j.GetProperty("job_id").GetString() == jobId).GetProperty("status").GetString();
}
