using System.Runtime.InteropServices;

namespace Ordo.Expressions;

/// <summary>
/// The CPU time the calling thread has used, where the operating system tells it (Linux): an expression's time limit
/// counts the work it does, not the time its thread waited for a CPU on a loaded machine.
/// </summary>
internal static partial class ThreadCpuClock
{
    private const int ClockThreadCpuTimeId = 3;
    private static readonly bool Available = OperatingSystem.IsLinux() && Probe();

    /// <summary>Whether thread CPU time can be read here (else callers fall back to the wall clock).</summary>
    public static bool IsAvailable => Available;

    /// <summary>The calling thread's CPU time, in <see cref="TimeSpan"/> ticks; 0 where it cannot be read.</summary>
    public static long Now()
    {
        if (!Available || ClockGetTime(ClockThreadCpuTimeId, out var t) != 0) return 0;
        return (t.Seconds * TimeSpan.TicksPerSecond) + (t.Nanoseconds / 100);
    }

    private static bool Probe()
    {
        try
        {
            return ClockGetTime(ClockThreadCpuTimeId, out _) == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);
}
