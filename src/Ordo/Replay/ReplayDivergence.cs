namespace Ordo.Replay;

/// <summary>The first place where a replay did not do what the recording did.</summary>
/// <param name="Step">The step id (<c>(job)</c> for the job's own events).</param>
/// <param name="Visit">The visit of the step (0 for the job's own events).</param>
/// <param name="What"><c>prompt_hash</c>, <c>request</c>, <c>output</c>, <c>route</c> or <c>status</c>.</param>
/// <param name="Recorded">What the recording holds there.</param>
/// <param name="Replayed">What the replay did there.</param>
public sealed record ReplayDivergence(string Step, int Visit, string What, string Recorded, string Replayed)
{
    /// <summary>The scope of the step inside a pattern (a branch or an item), if any.</summary>
    public string? Scope { get; init; }

    /// <summary>The recorded job the step belongs to, when it is a sub-workflow's job rather than the replayed job itself.</summary>
    public string? ChildJobId { get; init; }
}
