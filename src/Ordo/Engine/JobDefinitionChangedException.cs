namespace Ordo.Engine;

/// <summary>
/// A request on a job (a decision on one of its approvals) was refused because the job's stored definition no longer has
/// the hash the job recorded: it was changed in the database. The job was failed with <c>definition_changed</c>
/// (StepFailed and JobFailed, as when a step of it is about to run); the request itself was not recorded.
/// </summary>
public sealed class JobDefinitionChangedException(JobId jobId, Audit.DefinitionChangedException cause)
    : OrdoRefusedException($"job {jobId} failed with definition_changed: {cause?.Message}; the decision was not recorded", cause)
{
    /// <summary>The job, now failed.</summary>
    public JobId JobId { get; } = jobId;
}
