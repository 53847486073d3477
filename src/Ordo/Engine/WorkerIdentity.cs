using System.Diagnostics;
using System.Globalization;

namespace Ordo.Engine;

/// <summary>
/// Names a worker as <c>host/pid/start-ticks/instance</c>, so that a process on the same host can tell that the
/// owner of a lease is dead (killed, crashed) and take its work over at once instead of waiting for the lease to expire.
/// </summary>
public static class WorkerIdentity
{
    private static readonly long StartTicks = SafeStartTicks(Environment.ProcessId);

    /// <summary>A new worker name for this process.</summary>
    public static string Create(string? instance = null)
        => $"{Environment.MachineName}/{Environment.ProcessId}/{StartTicks}/{instance ?? Guid.NewGuid().ToString("N")[..8]}";

    /// <summary>Whether <paramref name="owner"/> names a process of this host that is no longer running.</summary>
    public static bool IsDeadOnThisHost(string owner)
    {
        ArgumentNullException.ThrowIfNull(owner);
        var parts = owner.Split('/');
        if (parts.Length < 4 || parts[0] != Environment.MachineName
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
            || !long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks))
        {
            return false;
        }

        if (pid == Environment.ProcessId && ticks == StartTicks)
        {
            return false;
        }

        var current = SafeStartTicks(pid);
        return current == 0 || current != ticks;
    }

    private static long SafeStartTicks(int pid)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            return p.StartTime.ToUniversalTime().Ticks / TimeSpan.TicksPerMillisecond;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException)
        {
            return 0;
        }
    }
}
