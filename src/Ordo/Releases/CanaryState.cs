namespace Ordo.Releases;

/// <summary>A canary as judged: its figures and whether it was rolled back.</summary>
/// <param name="Version">The canary version.</param>
/// <param name="Share">The configured share.</param>
/// <param name="Jobs">Jobs of the canary version, ended or not.</param>
/// <param name="Finished">Of those, ended (completed, failed, cancelled): the jobs every figure below counts.</param>
/// <param name="FailureRate">Failed over ended; null when none ended.</param>
/// <param name="GateRejectionRate">Ended jobs with a rejected artifact over ended jobs; null when none ended.</param>
/// <param name="CostPerJobRatio">Its cost per ended job over the stable version's cost per ended job; null when either has no ended job, or the stable version's cost is 0.</param>
/// <param name="RolledBack">Whether it was rolled back (its share is then 0).</param>
/// <param name="RolledBackAt">When.</param>
/// <param name="Reason">The bound it passed.</param>
public sealed record CanaryState(int Version, double Share, int Jobs, int Finished, double? FailureRate, double? GateRejectionRate, double? CostPerJobRatio,
    bool RolledBack, DateTimeOffset? RolledBackAt, string? Reason)
{
    /// <summary>The share jobs get now: 0 once rolled back.</summary>
    public double EffectiveShare => RolledBack ? 0 : Share;

    /// <summary>
    /// <c>rolled_back</c> once a bound was passed (a rollback record holds, whatever the share is now); <c>inactive</c> when its
    /// share is 0 (rolled back by hand, or not started), so no job gets it; <c>active</c> otherwise.
    /// </summary>
    public string Status => RolledBack ? "rolled_back" : Share <= 0 ? "inactive" : "active";
}
