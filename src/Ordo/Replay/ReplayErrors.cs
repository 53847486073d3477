namespace Ordo.Replay;

/// <summary>The errors a replay records for a request the recording does not answer; either one is a divergence.</summary>
public static class ReplayErrors
{
    /// <summary>The recording holds no call with this id: a new step, attempt, round or call.</summary>
    public const string Unrecorded = "replay_unrecorded";

    /// <summary>The recording holds the call, with another request (a changed prompt, other arguments, another tool).</summary>
    public const string Diverged = "replay_diverged";
}
