namespace Ordo.State;

/// <summary>Where a job is in its life.</summary>
public enum JobStatus
{
    /// <summary>Submitted; no step has started yet.</summary>
    Queued,
    /// <summary>At least one step has started and the job has not ended.</summary>
    Running,
    /// <summary>Ended successfully.</summary>
    Completed,
    /// <summary>Ended in failure.</summary>
    Failed,
    /// <summary>Paused until a human decides.</summary>
    WaitingApproval,
    /// <summary>Cancelled by a user or stopped by a kill switch.</summary>
    Cancelled,
}

/// <summary>Conversions between <see cref="JobStatus"/> and its wire form (<c>waiting_approval</c>, …).</summary>
public static class JobStatusNames
{
    /// <summary>The wire name of a status.</summary>
    public static string ToWire(this JobStatus status) => status switch
    {
        JobStatus.Queued => "queued",
        JobStatus.Running => "running",
        JobStatus.Completed => "completed",
        JobStatus.Failed => "failed",
        JobStatus.WaitingApproval => "waiting_approval",
        JobStatus.Cancelled => "cancelled",
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, null),
    };

    /// <summary>Parses a wire name.</summary>
    public static bool TryParse(string? text, out JobStatus status)
    {
        status = text switch
        {
            "queued" => JobStatus.Queued,
            "running" => JobStatus.Running,
            "completed" => JobStatus.Completed,
            "failed" => JobStatus.Failed,
            "waiting_approval" => JobStatus.WaitingApproval,
            "cancelled" => JobStatus.Cancelled,
            _ => (JobStatus)(-1),
        };
        return (int)status >= 0;
    }

    /// <summary>Whether the status is final: completed, failed or cancelled.</summary>
    public static bool IsTerminal(this JobStatus status) => status is JobStatus.Completed or JobStatus.Failed or JobStatus.Cancelled;
}
