using System.Diagnostics;
using Jint;
using Jint.Runtime;

namespace Ordo.Expressions;

/// <summary>
/// The statement, time and memory limits of one evaluation, checked before every statement. Unlike Jint's own
/// constraints they can be disarmed, so that preparing a sandbox engine (freezing its globals) never counts
/// against a limit meant for users' expressions: on a cold, busy process that preparation alone can take longer
/// than an expression may.
/// </summary>
internal sealed class SandboxLimits(ExpressionOptions options) : Constraint
{
    // A non-positive or absurdly long timeout means no time limit (and must not overflow into a negative one).
    private readonly long _timeoutTicks = options.Timeout <= TimeSpan.Zero || options.Timeout.TotalDays > 365
        ? long.MaxValue
        : (long)(options.Timeout.TotalSeconds * Stopwatch.Frequency);
    private readonly long _timeoutCpu = options.Timeout <= TimeSpan.Zero || options.Timeout.TotalDays > 365 ? long.MaxValue : options.Timeout.Ticks;
    private long _statements;
    private long _startTicks;
    private long _startCpu;
    private long _startBytes;
    private long _evaluationBytes;

    /// <summary>Whether the limits apply (false while the engine is being prepared).</summary>
    public bool Armed { get; set; }

    /// <inheritdoc />
    public override bool IsAmortizable => false;

    /// <inheritdoc />
    public override void Check()
    {
        if (!Armed)
        {
            return;
        }

        if (++_statements > options.MaxStatements)
        {
            throw new StatementsCountOverflowException();
        }

        // CPU time never runs ahead of the wall clock: only once the wall clock has passed the limit is it worth reading.
        // The limit counts the evaluation's own work, so a thread that waited for a CPU on a loaded machine does not
        // fail a trivial expression; ten times the limit on the wall clock still ends one that is stalled for good.
        var wall = Stopwatch.GetTimestamp() - _startTicks;
        if (wall > _timeoutTicks && (!ThreadCpuClock.IsAvailable || ThreadCpuClock.Now() - _startCpu > _timeoutCpu || wall / 10 > _timeoutTicks))
        {
            throw new TimeoutException();
        }

        CheckMemory(_startBytes);
    }

    /// <summary>Marks the start of an evaluation, for <see cref="CheckMemoryAfter"/>.</summary>
    public void Begin() => _evaluationBytes = GC.GetAllocatedBytesForCurrentThread();

    /// <summary>
    /// Checks the memory allocated since <see cref="Begin"/>: one statement can allocate a lot (<c>'x'.repeat(1e8)</c>)
    /// with no statement after it to notice.
    /// </summary>
    public void CheckMemoryAfter() => CheckMemory(_evaluationBytes);

    private void CheckMemory(long since)
    {
        if (Armed && options.MemoryLimitBytes > 0 && GC.GetAllocatedBytesForCurrentThread() - since > options.MemoryLimitBytes)
        {
            throw new MemoryLimitExceededException($"Script has allocated more than {options.MemoryLimitBytes} bytes");
        }
    }

    /// <inheritdoc />
    public override void Reset()
    {
        _statements = 0;
        _startTicks = Stopwatch.GetTimestamp();
        _startCpu = ThreadCpuClock.Now();
        _startBytes = GC.GetAllocatedBytesForCurrentThread();
    }
}
