using Ordo.Events;
using Ordo.Storage;

namespace Ordo.Replay;

/// <summary>A recorded job: its record, its whole event log, and the jobs its sub-workflow steps started.</summary>
/// <param name="Job">The job as the store lists it.</param>
/// <param name="Events">Its events, in order.</param>
/// <param name="Children">Its child jobs (sub-workflows), each with its own log.</param>
public sealed record RecordedJob(JobRecord Job, IReadOnlyList<EventEnvelope> Events, IReadOnlyList<RecordedJob> Children)
{
    /// <summary>The job and every job under it, parents first.</summary>
    public IEnumerable<RecordedJob> Tree()
    {
        yield return this;
        foreach (var child in Children)
        {
            foreach (var job in child.Tree()) yield return job;
        }
    }

    /// <summary>The payload of the job's <c>JobSubmitted</c> event.</summary>
    /// <exception cref="InvalidDataException">The log does not start with <c>JobSubmitted</c>.</exception>
    public JobSubmittedPayload Submitted => Events.Count > 0 && Events[0].Type == EventTypes.JobSubmitted
        ? Events[0].GetPayload<JobSubmittedPayload>()
        : throw new InvalidDataException($"the log of job {Job.JobId} does not start with {EventTypes.JobSubmitted}");
}
