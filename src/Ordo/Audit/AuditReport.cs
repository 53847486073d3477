namespace Ordo.Audit;

/// <summary>What <c>ordo audit verify</c> found about one job.</summary>
public enum JobAuditStatus
{
    /// <summary>Its events are all there, unaltered, and agree with the audit log and the checkpoint.</summary>
    Intact,
    /// <summary>The audit log or the checkpoint records it, but the job is gone from the store.</summary>
    Deleted,
    /// <summary>Its newest events were deleted: the log or the checkpoint records events the store no longer has.</summary>
    Truncated,
    /// <summary>An event was altered, removed from the middle or moved: the hash chain breaks.</summary>
    Rewritten,
    /// <summary>Its chain is whole but differs from the hashes the audit log or the checkpoint recorded: events were rewritten and the chain recomputed.</summary>
    Resealed,
    /// <summary>Its stored definition does not match the hash its JobSubmitted event recorded.</summary>
    DefinitionChanged,
    /// <summary>Events of it are not in the audit log (written behind the store's back, or with the log turned off).</summary>
    NotLogged,
}

/// <summary>The report on one job.</summary>
/// <param name="JobId">The job.</param>
/// <param name="Status">The worst thing found (<see cref="JobAuditStatus.Intact"/> when nothing was).</param>
/// <param name="Events">How many of its events were checked (0 for a deleted job).</param>
/// <param name="InCheckpoint">Whether the checkpoint covered it (false for a job added since).</param>
/// <param name="Problems">Every problem found, each a sentence.</param>
public sealed record JobAudit(JobId JobId, JobAuditStatus Status, long Events, bool InCheckpoint, IReadOnlyList<string> Problems)
{
    /// <summary>Whether nothing is wrong with it.</summary>
    public bool Intact => Status == JobAuditStatus.Intact;

    /// <summary>Where its own hash chain breaks (the first event missing, altered or out of place), when it does.</summary>
    public long? BrokenAtSeq { get; init; }
}

/// <summary>The report of <see cref="AuditChecker"/>.</summary>
/// <param name="Head">The audit log's size and root as stored.</param>
/// <param name="Checkpoint">The checkpoint checked against, if any.</param>
/// <param name="LogProblems">Problems of the log itself (leaves or subtrees altered, not extending the checkpoint).</param>
/// <param name="DefinitionProblems">Problems of stored definitions, each naming the definition.</param>
/// <param name="Jobs">One report per job checked, jobs found deleted included.</param>
public sealed record AuditReport(AuditTreeHead Head, AuditCheckpoint? Checkpoint, IReadOnlyList<string> LogProblems, IReadOnlyList<string> DefinitionProblems, IReadOnlyList<JobAudit> Jobs)
{
    /// <summary>Whether everything checked is intact.</summary>
    public bool Intact => LogProblems.Count == 0 && DefinitionProblems.Count == 0 && Jobs.All(j => j.Intact);
}

/// <summary>The wire names of <see cref="JobAuditStatus"/>.</summary>
public static class JobAuditStatusNames
{
    /// <summary><c>intact</c>, <c>deleted</c>, <c>truncated</c>, <c>rewritten</c>, <c>resealed</c>, <c>definition_changed</c> or <c>not_logged</c>.</summary>
    public static string ToWire(this JobAuditStatus status) => status switch
    {
        JobAuditStatus.Intact => "intact",
        JobAuditStatus.Deleted => "deleted",
        JobAuditStatus.Truncated => "truncated",
        JobAuditStatus.Rewritten => "rewritten",
        JobAuditStatus.Resealed => "resealed",
        JobAuditStatus.DefinitionChanged => "definition_changed",
        JobAuditStatus.NotLogged => "not_logged",
        _ => throw new ArgumentOutOfRangeException(nameof(status)),
    };
}
