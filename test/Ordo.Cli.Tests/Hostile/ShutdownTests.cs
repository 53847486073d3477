using System.Diagnostics;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Hostile;

/// <summary>SIGTERM ends a process within its grace, even while a step keeps a CPU busy and never looks at its cancellation.</summary>
public sealed class ShutdownTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task SigtermDuringAStepThatIgnoresCancellation_EndsTheProcessWithinTheGrace_AndReleasesTheStep()
    {
        using var w = Workspace.Create();
        w.Write("ordo.yaml", $"plugins: [\"{TestPaths.TestPluginDll}\"]\n");
        var workflow = w.Write("spin.yaml", """
            ordo: 1
            workflow: spin
            version: 1
            agents:
              spinner: { kind: code, type: "Ordo.TestPlugins.Spinner" }
            steps:
              - { id: spin, agent: spinner, input: { ms: 120000 } }
            """);
        using var run = OrdoProcess.Start(new Dictionary<string, string> { ["ORDO_SHUTDOWN_GRACE"] = "3s" }, w.Root, "run", workflow, "--db", w.Db);
        Assert.True(await run.WaitForOutputAsync(lines => lines.Any(l => l.StartsWith("ordo: running job ", StringComparison.Ordinal)), Patience), run.Err);
        var job = run.OutLines.First(l => l.StartsWith("ordo: running job ", StringComparison.Ordinal))["ordo: running job ".Length..].Split(' ')[0];
        for (var i = 0; i < 600 && !(await OrdoProcess.RunAsync(w.Root, Patience, "events", job, "--db", w.Db)).Out.Contains("StepStarted", StringComparison.Ordinal); i++)
        {
            await Task.Delay(100);
        }

        var signalled = Stopwatch.StartNew();
        await run.SignalAsync("TERM");
        var code = await run.WaitForExitAsync(TimeSpan.FromSeconds(60));
        var took = signalled.Elapsed;
        Assert.True(code == 130, $"exit {code}\n{run.Err}");

        // 3 s of grace, then the step is abandoned at once: not a second grace on top of the first.
        Assert.True(took < TimeSpan.FromSeconds(5.5), $"SIGTERM took {took} to end the process (grace 3 s)");

        // The step's item was released for another process, and the log is whole.
        var doctor = await OrdoProcess.RunAsync(w.Root, Patience, "doctor", "--db", w.Db);
        Assert.True(doctor.ExitCode == 0, doctor.ToString());
        var audit = await OrdoProcess.RunAsync(w.Root, Patience, "audit", "verify", "--db", w.Db);
        Assert.True(audit.ExitCode == 0, audit.ToString());
    }

    [Theory]
    [InlineData("ORDO_SHUTDOWN_GRACE", "soon", "ORDO_SHUTDOWN_GRACE: 'soon' is not a duration")]
    [InlineData("ORDO_SHUTDOWN_GRACE", "999d", "ORDO_SHUTDOWN_GRACE: '999d' is not a duration of at most 24h")]
    [InlineData("ORDO_LEASE", "999d", "ORDO_LEASE: '999d' is not a duration from 1s to 24h")]
    [InlineData("ORDO_PURE_STEPS_PER_COMMIT", "0", "ORDO_PURE_STEPS_PER_COMMIT: '0' is not a whole number from 1 to 1024")]
    [InlineData("ORDO_PURE_STEPS_PER_COMMIT", "-3", "ORDO_PURE_STEPS_PER_COMMIT: '-3' is not a whole number from 1 to 1024")]
    [InlineData("ORDO_PURE_STEPS_PER_COMMIT", "many", "ORDO_PURE_STEPS_PER_COMMIT: 'many' is not a whole number")]
    public async Task ARuntimeSettingThatIsNotUsable_IsAnInputError(string variable, string value, string message)
    {
        using var w = Workspace.WithSample();
        using var run = OrdoProcess.Start(new Dictionary<string, string> { [variable] = value }, w.Root, SampleJob.Args(w, "run"));
        Assert.Equal(2, await run.WaitForExitAsync(Patience));
        Assert.Contains(message, run.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EveryStepInACommitOfItsOwn_RunsTheSampleToTheEnd()
    {
        using var w = Workspace.WithSample();
        using var run = OrdoProcess.Start(new Dictionary<string, string> { ["ORDO_PURE_STEPS_PER_COMMIT"] = "1" }, w.Root, SampleJob.Args(w, "run"));
        Assert.True(await run.WaitForExitAsync(Patience) == 0, run.Err);
        var audit = await OrdoProcess.RunAsync(w.Root, Patience, "audit", "verify", "--all", "--db", w.Db);
        Assert.True(audit.ExitCode == 0, audit.ToString());
    }
}
