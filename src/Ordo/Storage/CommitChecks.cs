using Ordo.Events;

namespace Ordo.Storage;

/// <summary>Sanity checks every store applies before writing events.</summary>
public static class CommitChecks
{
    /// <summary>Ensures <paramref name="events"/> continue the log at (<paramref name="expectedSeq"/>, <paramref name="expectedHead"/>) without gaps.</summary>
    /// <exception cref="ArgumentException">The events do not continue the log.</exception>
    public static void EnsureContinues(JobId jobId, long expectedSeq, ReadOnlySpan<byte> expectedHead, IReadOnlyList<EventEnvelope> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        var prev = expectedHead.ToArray();
        for (var i = 0; i < events.Count; i++)
        {
            var e = events[i];
            if (e.JobId != jobId || e.Seq != expectedSeq + i + 1 || !e.PrevHash.AsSpan().SequenceEqual(prev))
            {
                throw new ArgumentException($"Event {i} of the commit for job {jobId} does not continue the log at seq {expectedSeq + i + 1}.", nameof(events));
            }

            prev = e.Hash;
        }
    }
}
