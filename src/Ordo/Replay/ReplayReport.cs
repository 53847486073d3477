namespace Ordo.Replay;

/// <summary>What a replay found.</summary>
/// <param name="JobId">The recorded job.</param>
/// <param name="Workflow">The definition replayed, as <c>name@version</c>.</param>
/// <param name="ReplayedSteps">Step attempts the replay ran to an end (succeeded, failed or blocked), in the job and its sub-workflows.</param>
/// <param name="Divergence">The first divergence; null when the replay did what the recording did, event for event.</param>
public sealed record ReplayReport(string JobId, string Workflow, int ReplayedSteps, ReplayDivergence? Divergence)
{
    /// <summary>Whether the replay diverged.</summary>
    public bool Diverged => Divergence is not null;

    /// <summary>Recorded answers the replay was given (model calls and tool calls).</summary>
    public int AnswersServed { get; init; }

    /// <summary>Requests the recording did not answer, in order (each is also a divergence, unless it came past the end of a recording that stops).</summary>
    public IReadOnlyList<string> Misses { get; init; } = [];

    /// <summary>
    /// Whether the recording holds the job's end (it completed, failed or was cancelled). False for a job that was queued,
    /// running or waiting for an approval when it was read: the replay was compared with its recording only as far as
    /// the recording goes (<see cref="RecordedEvents"/> events), and <see cref="ReplayedSteps"/> counts no further.
    /// </summary>
    public bool RecordingEnded { get; init; } = true;

    /// <summary>
    /// Whether the recorded job was cancelled from outside the engine (a user's <c>ordo cancel</c>, a kill switch, the
    /// cancellation of its parent): the replay, which nobody cancels, was compared with the recording up to the
    /// cancellation, and <see cref="ReplayedSteps"/> counts no further than the recording.
    /// </summary>
    public bool UpToCancellation { get; init; }

    /// <summary>The recorded job's status as its recording holds it (<c>completed</c>, <c>queued</c>, <c>waiting_approval</c>, …).</summary>
    public string RecordedStatus { get; init; } = "";

    /// <summary>The events of the recording (the job's and its sub-workflows').</summary>
    public int RecordedEvents { get; init; }
}
