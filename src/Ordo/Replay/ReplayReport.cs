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

    /// <summary>Requests the recording did not answer, in order (each is also a divergence).</summary>
    public IReadOnlyList<string> Misses { get; init; } = [];
}
