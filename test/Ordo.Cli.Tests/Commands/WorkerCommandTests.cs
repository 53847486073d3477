using System.Diagnostics;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Commands;

/// <summary>
/// <c>ordo worker</c> started by another process to serve it (<c>ORDO_STOP_WITH_PARENT</c>, as <c>ordo bench</c> starts
/// its workers): it drains and exits 0 once that process is gone, even when it was killed with SIGKILL.
/// </summary>
public sealed class WorkerCommandTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task AWorkerToldToStopWithItsParent_Drains_WhenTheParentIsKilled()
    {
        using var w = Workspace.Create();
        using var parent = Process.Start(new ProcessStartInfo("sleep", "600") { UseShellExecute = false })!;
        try
        {
            await StopsWithItsParentAsync(w, parent);
        }
        finally
        {
            if (!parent.HasExited) parent.Kill();
        }
    }

    private static async Task StopsWithItsParentAsync(Workspace w, Process parent)
    {
        using var worker = OrdoProcess.Start(new Dictionary<string, string> { ["ORDO_STOP_WITH_PARENT"] = parent.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) },
            w.Root, "worker", "--db", w.Db, "--concurrency", "1");
        Assert.True(await worker.WaitForOutputAsync(lines => lines.Any(l => l.Contains("waiting for work", StringComparison.Ordinal)), Patience), worker.Err);

        // Alive while its parent is: a few of its looks at the parent go by.
        await Task.Delay(TimeSpan.FromSeconds(2.5));
        Assert.False(worker.HasExited, worker.Err);

        parent.Kill();
        await parent.WaitForExitAsync();
        Assert.Equal(0, await worker.WaitForExitAsync(Patience));
        Assert.Contains(worker.OutLines, l => l.Contains("worker stopped", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AnIdleWorker_WithNoGrace_StopsOnSigterm_WithoutReportingStepsItWasNotRunning()
    {
        using var w = Workspace.Create();
        using var worker = OrdoProcess.Start(new Dictionary<string, string> { ["ORDO_SHUTDOWN_GRACE"] = "0s" }, w.Root, "worker", "--db", w.Db, "--concurrency", "4");
        Assert.True(await worker.WaitForOutputAsync(lines => lines.Any(l => l.Contains("waiting for work", StringComparison.Ordinal)), Patience), worker.Err);
        await worker.SignalAsync("TERM");
        Assert.Equal(0, await worker.WaitForExitAsync(Patience));
        Assert.DoesNotContain("still running", worker.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AWorker_PrintsALine_ForEveryStepItRan_OfSeveralJobsOfOneWorkflow()
    {
        using var w = Workspace.Create();
        w.Write("fanned.yaml", """
            workflow: fanned
            version: 1
            steps:
              - id: fan
                parallel: [a, b, c, d]
                join: done
              - { id: a, transform: { set: { x: "1" } } }
              - { id: b, transform: { set: { x: "2" } } }
              - { id: c, transform: { set: { x: "3" } } }
              - { id: d, transform: { set: { x: "4" } } }
              - { id: done, transform: { set: { ok: "true" } } }
            """);
        for (var i = 0; i < 3; i++) Assert.Equal(0, (await OrdoProcess.RunAsync(w.Root, Patience, "submit", "fanned.yaml", "--db", w.Db)).ExitCode);

        // Six steps a job, three jobs: the jobs share their steps' names, and each step is a line of its own.
        using var worker = OrdoProcess.Start(w.Root, "worker", "--db", w.Db, "--concurrency", "4");
        var all = await worker.WaitForOutputAsync(lines => lines.Count(l => l.Contains('✓', StringComparison.Ordinal)) >= 18, Patience);
        await worker.SignalAsync("TERM");
        Assert.Equal(0, await worker.WaitForExitAsync(Patience));
        Assert.True(all, string.Join('\n', worker.OutLines));
        Assert.Equal(18, worker.OutLines.Count(l => l.Contains('✓', StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("bench", "ORDO_STOP_WITH_PARENT must be a process id, not 'bench'")]
    [InlineData("0", "ORDO_STOP_WITH_PARENT must be a process id, not '0'")]
    [InlineData("2147483647", "ORDO_STOP_WITH_PARENT: process 2147483647 is not running")]
    public async Task AParentThatIsNotARunningProcess_IsRefused_NamingTheVariable(string value, string message)
    {
        using var w = Workspace.Create();
        using var worker = OrdoProcess.Start(new Dictionary<string, string> { ["ORDO_STOP_WITH_PARENT"] = value }, w.Root, "worker", "--db", w.Db);
        Assert.Equal(2, await worker.WaitForExitAsync(Patience));
        Assert.Contains(message, worker.Err, StringComparison.Ordinal);
    }
}
