namespace Ordo.Releases;

/// <summary>A canary as judged: its figures and whether it was rolled back.</summary>
/// <param name="Version">The canary version.</param>
/// <param name="Share">The configured share.</param>
/// <param name="Jobs">Jobs of the canary version.</param>
/// <param name="Finished">Of those, ended (completed, failed, cancelled).</param>
/// <param name="FailureRate">Failed over finished; null when none finished.</param>
/// <param name="GateRejectionRate">Jobs with a rejected artifact over jobs; null when there are none.</param>
/// <param name="CostPerJobRatio">Its cost per job over the stable version's; null when either has none.</param>
/// <param name="RolledBack">Whether it was rolled back (its share is then 0).</param>
/// <param name="RolledBackAt">When.</param>
/// <param name="Reason">The bound it passed.</param>
public sealed record CanaryState(int Version, double Share, int Jobs, int Finished, double? FailureRate, double? GateRejectionRate, double? CostPerJobRatio,
    bool RolledBack, DateTimeOffset? RolledBackAt, string? Reason)
{
    /// <summary>The share jobs get now: 0 once rolled back.</summary>
    public double EffectiveShare => RolledBack ? 0 : Share;
}
