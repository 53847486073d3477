using Microsoft.Extensions.Logging;

namespace Ordo.Engine;

internal static partial class RuntimeLog
{
    private static readonly Func<ILogger, string, string, int, string?, string?, IDisposable?> s_stepScope =
        LoggerMessage.DefineScope<string, string, int, string?, string?>("Job {JobId} step {Step} attempt {Attempt} trace {TraceId} span {SpanId}");

    /// <summary>The scope of everything logged while a step attempt runs: its job, work key, attempt, and trace when one is recorded.</summary>
    public static IDisposable? StepScope(ILogger logger, string job, string step, int attempt, string? traceId, string? spanId)
        => s_stepScope(logger, job, step, attempt, traceId, spanId);

    [LoggerMessage(1, LogLevel.Warning, "Work item {Step} refers to job {Job}, which has no log; dropping it")]
    public static partial void OrphanItem(ILogger logger, string step, JobId job);

    [LoggerMessage(2, LogLevel.Information, "Step {Step} of job {Job} stopped: {Reason}")]
    public static partial void StepAborted(ILogger logger, string step, JobId job, string reason);

    [LoggerMessage(3, LogLevel.Error, "Step {Step} of job {Job} threw")]
    public static partial void StepThrew(ILogger logger, Exception exception, string step, JobId job);

    [LoggerMessage(4, LogLevel.Information, "Result of {Step} of job {Job} discarded: {Outcome} (another worker owns the item now)")]
    public static partial void ResultDiscarded(ILogger logger, string step, JobId job, Storage.CommitOutcome outcome);

    [LoggerMessage(5, LogLevel.Debug, "Discarded {Step} of job {Job}: nothing left to do")]
    public static partial void ItemDiscarded(ILogger logger, string step, JobId job);

    [LoggerMessage(6, LogLevel.Warning, "Worker {Worker} takes over the leases of worker {Owner}: its process is no longer running")]
    public static partial void TakingOver(ILogger logger, string worker, string owner);

    [LoggerMessage(7, LogLevel.Error, "Unexpected failure while running {Job} {Step}")]
    public static partial void WorkerFailed(ILogger logger, Exception exception, JobId job, string step);

    [LoggerMessage(8, LogLevel.Warning, "Could not release {Job} {Step}; its lease will expire")]
    public static partial void ReleaseFailed(ILogger logger, Exception exception, JobId job, string step);

    [LoggerMessage(9, LogLevel.Warning, "Lease renewal failed; will try again")]
    public static partial void RenewFailed(ILogger logger, Exception exception);

    [LoggerMessage(10, LogLevel.Warning, "Steps still running after {Grace}: interrupting them and releasing their leases")]
    public static partial void GraceExpired(ILogger logger, TimeSpan grace);

    [LoggerMessage(11, LogLevel.Warning, "An observer failed on job {Job}")]
    public static partial void ObserverFailed(ILogger logger, Exception exception, JobId job);

    [LoggerMessage(12, LogLevel.Warning, "Worker {Worker} lost the lease of work item {Item} (it expired and another worker may hold it now); its step is stopped and will not commit")]
    public static partial void LeaseLost(ILogger logger, long item, string worker);

    [LoggerMessage(13, LogLevel.Warning, "Looking for work failed; trying again in {Pause}")]
    public static partial void DispatchFailed(ILogger logger, Exception exception, TimeSpan pause);

    [LoggerMessage(14, LogLevel.Warning, "Could not release work item {Item} of an abandoned step; it becomes free when its lease expires")]
    public static partial void AbandonedReleaseFailed(ILogger logger, Exception exception, long item);

    [LoggerMessage(15, LogLevel.Debug, "Step {Step} of job {Job} started before the commit leasing it, which was refused or planned again; its run is dropped unwritten")]
    public static partial void EarlyStartDropped(ILogger logger, string step, JobId job);

    [LoggerMessage(16, LogLevel.Warning, "Could not write the commit of {Step} of job {Job} ahead of the one before it; it is written after that one instead")]
    public static partial void CommitAheadFailed(ILogger logger, Exception exception, string step, JobId job);

    [LoggerMessage(17, LogLevel.Warning, "Could not cancel child job {Child} of cancelled job {Job} at once; the request the cancel queued for it stops it when a worker takes it")]
    public static partial void ChildCancelDeferred(ILogger logger, Exception exception, JobId child, JobId job);
}
