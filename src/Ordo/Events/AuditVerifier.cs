using Ordo.Storage;

namespace Ordo.Events;

/// <summary>The result of checking one job's hash chain.</summary>
/// <param name="JobId">The job.</param>
/// <param name="Intact">Whether every event is present, in order, unaltered, and the chain ends where the job record says.</param>
/// <param name="Events">How many events were checked.</param>
/// <param name="BrokenAtSeq">The first sequence number where the chain breaks.</param>
/// <param name="Problem">What is wrong there.</param>
public sealed record AuditResult(JobId JobId, bool Intact, long Events, long? BrokenAtSeq, string? Problem);

/// <summary>
/// Recomputes a job's hash chain from its stored events. An altered event, a deleted event (a gap, or a shortened
/// tail), or events in a different order all break the chain at a sequence number, which is reported.
/// </summary>
public static class AuditVerifier
{
    /// <summary>Checks one job.</summary>
    /// <exception cref="OrdoException">The job does not exist.</exception>
    public static async Task<AuditResult> VerifyAsync(IOrdoStore store, JobId jobId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        var job = await store.GetJobAsync(jobId, cancellationToken).ConfigureAwait(false) ?? throw new OrdoException($"job {jobId} does not exist");
        var prev = EventChain.GenesisHash.ToArray();
        long expected = 1;
        await foreach (var e in store.ReadEventsAsync(jobId, 0, cancellationToken).ConfigureAwait(false))
        {
            if (e.Seq != expected)
            {
                return new AuditResult(jobId, false, expected - 1, expected,
                    e.Seq > expected ? $"event {expected} is missing (the next stored event is {e.Seq})" : $"event {e.Seq} appears out of order after {expected - 1}");
            }

            if (expected == 1 && e.Type != EventTypes.JobSubmitted)
            {
                return new AuditResult(jobId, false, 0, 1, $"the log starts with {e.Type}, not JobSubmitted");
            }

            var hash = EventChain.ComputeHash(prev, e);
            if (!hash.AsSpan().SequenceEqual(e.Hash))
            {
                return new AuditResult(jobId, false, expected - 1, e.Seq, $"event {e.Seq} ({e.Type}) does not match its hash: it was altered, or events before it were changed");
            }

            prev = hash;
            expected++;
        }

        var count = expected - 1;
        if (count != job.LastSeq)
        {
            return new AuditResult(jobId, false, count, count + 1,
                count < job.LastSeq ? $"the log ends at event {count} but the job records {job.LastSeq} events: events {count + 1}..{job.LastSeq} are missing" : $"the log has {count} events but the job records only {job.LastSeq}");
        }

        if (!prev.AsSpan().SequenceEqual(job.HeadHash))
        {
            return new AuditResult(jobId, false, count, count, $"the last event's hash does not match the head hash recorded for the job");
        }

        return new AuditResult(jobId, true, count, null, null);
    }
}
