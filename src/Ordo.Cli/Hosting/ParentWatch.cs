using System.Diagnostics;
using System.Globalization;

namespace Ordo.Cli.Hosting;

/// <summary>
/// Stops the process the way SIGTERM does (a worker drains and exits 0) once the process named by
/// <c>ORDO_STOP_WITH_PARENT</c> is gone. <c>ordo bench</c> sets it, to its own process id, on the <c>ordo worker</c>
/// processes it starts, so that a bench killed with SIGKILL, which can run no clean-up of its own, leaves no worker
/// behind. Looked at once a second.
/// </summary>
internal static class ParentWatch
{
    /// <summary>The environment variable holding the process id to outlive by at most a second.</summary>
    public const string Variable = "ORDO_STOP_WITH_PARENT";

    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    /// <summary>Starts watching when <see cref="Variable"/> holds a process id; the returned timer ends the watch when disposed.</summary>
    /// <exception cref="ArgumentException">The variable is set but is not the id of another running process.</exception>
    public static ITimer? Start(CancellationTokenSource stop, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(stop);
        ArgumentNullException.ThrowIfNull(time);
        var value = Environment.GetEnvironmentVariable(Variable);
        if (string.IsNullOrEmpty(value)) return null;
        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid <= 0)
        {
            throw new ArgumentException($"{Variable} must be a process id, not '{value}'");
        }

        // Refused now rather than stopping at once: a process cannot outlive itself, and one that is gone is a mistake.
        if (pid == Environment.ProcessId) throw new ArgumentException($"{Variable} is this process's own id ({pid}): name the process it should stop with");
        if (!IsRunning(pid)) throw new ArgumentException($"{Variable}: process {pid} is not running");

        return time.CreateTimer(_ =>
        {
            if (!IsRunning(pid)) stop.Cancel();
        }, null, TimeSpan.Zero, Interval);
    }

    /// <summary>Whether process <paramref name="pid"/> exists and has not exited (a zombie, exited but not yet reaped, has exited).</summary>
    public static bool IsRunning(int pid)
    {
        if (OperatingSystem.IsLinux())
        {
            string stat;
            try
            {
                stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return false;
            }

            // "pid (command) state ...": the command may hold spaces and parentheses, so the state follows the last ')'.
            var end = stat.LastIndexOf(')');
            return end < 0 || end + 2 >= stat.Length || stat[end + 2] is not ('Z' or 'X');
        }

        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }
}
