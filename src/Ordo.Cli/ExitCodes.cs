namespace Ordo.Cli;

/// <summary>The exit codes of <c>ordo</c> (see docs/cli.md).</summary>
internal static class ExitCodes
{
    /// <summary>The job completed, or the command succeeded.</summary>
    public const int Ok = 0;
    /// <summary>An internal error (a bug): message and log path on stderr.</summary>
    public const int InternalError = 1;
    /// <summary>Invalid input: nothing was created or changed.</summary>
    public const int InvalidInput = 2;
    /// <summary>The job failed (or an audit found a broken chain).</summary>
    public const int JobFailed = 3;
    /// <summary>The job is paused, waiting for an approval.</summary>
    public const int WaitingApproval = 4;
    /// <summary>The job was cancelled or stopped by a kill switch.</summary>
    public const int Cancelled = 5;
    /// <summary><c>ordo replay</c>: the replay diverged from the recording (with <c>--suite</c>: at least one job did).</summary>
    public const int Diverged = 6;
    /// <summary>The store cannot be used as asked: it is full, read-only, or written by a newer Ordo. Nothing is lost: retry once it can take writes.</summary>
    public const int StoreUnavailable = 7;
    /// <summary>The tenant is over its quota (<c>concurrent_jobs</c>, <c>jobs_per_minute</c>): nothing was created; the message says how long to wait before trying again.</summary>
    public const int OverQuota = 8;
    /// <summary>The command was interrupted (Ctrl-C, SIGTERM) before the job settled; resume it with <c>ordo resume</c>.</summary>
    public const int Interrupted = 130;

    public static int ForStatus(State.JobStatus status) => status switch
    {
        State.JobStatus.Completed => Ok,
        State.JobStatus.Failed => JobFailed,
        State.JobStatus.WaitingApproval => WaitingApproval,
        State.JobStatus.Cancelled => Cancelled,
        _ => Interrupted,
    };
}

/// <summary>A problem with what the user asked for (exit 2): printed without a stack trace.</summary>
internal sealed class CliInputException(string message) : Exception(message);
