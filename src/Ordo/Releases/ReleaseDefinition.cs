namespace Ordo.Releases;

/// <summary>The release of one workflow (<c>releases.NAME</c> in ordo.yaml): which version a job submitted by name runs.</summary>
public sealed record ReleaseDefinition
{
    /// <summary>The workflow name.</summary>
    public required string Workflow { get; init; }

    /// <summary>The version of a job submitted by name alone; null: the highest version found.</summary>
    public int? Stable { get; init; }

    /// <summary>A new version tried on a share of the jobs submitted by name, rolled back by itself past a bound.</summary>
    public CanaryDefinition? Canary { get; init; }

    /// <summary>A version run beside production in dry run, on a share of the production jobs, to compare outcomes.</summary>
    public ShadowDefinition? Shadow { get; init; }

    /// <summary>Where the release and its versions are written in ordo.yaml, for problems that name them; null for a release built in code.</summary>
    public ReleaseSource? Source { get; init; }
}

/// <summary>Where a release's keys are written: the workflow name under <c>releases:</c>, and each version it names.</summary>
/// <param name="Release"><c>releases.NAME</c>.</param>
/// <param name="Stable"><c>releases.NAME.stable</c>; null when not given.</param>
/// <param name="CanaryVersion"><c>releases.NAME.canary.version</c>; null without a canary.</param>
/// <param name="ShadowVersion"><c>releases.NAME.shadow.version</c>; null without a shadow.</param>
public sealed record ReleaseSource(Workflows.SourceLocation Release, Workflows.SourceLocation? Stable, Workflows.SourceLocation? CanaryVersion, Workflows.SourceLocation? ShadowVersion);

/// <summary>A canary: <c>{ version, share, min_jobs, rollback_when }</c>.</summary>
/// <param name="Version">The canary version.</param>
/// <param name="Share">The share of jobs submitted by name that run it, in [0, 1], chosen by a stable hash of the job id.</param>
/// <param name="MinJobs">Ended canary jobs before it is judged. Default: 20. A canary without any bound (<c>rollback_when</c>) is never rolled back.</param>
/// <param name="MaxFailureRate">Rolled back when failed over ended canary jobs passes this; null: not a bound.</param>
/// <param name="MaxGateRejectionRate">Rolled back when the ended canary jobs with a rejected artifact, over ended canary jobs, pass this; null: not a bound.</param>
/// <param name="MaxCostPerJobRatio">Rolled back when the canary's cost per ended job, over the stable version's cost per ended job, passes this; null: not a bound.</param>
public sealed record CanaryDefinition(int Version, double Share, int MinJobs, double? MaxFailureRate, double? MaxGateRejectionRate, double? MaxCostPerJobRatio);

/// <summary>A shadow: <c>{ version, share }</c>.</summary>
/// <param name="Version">The shadow version.</param>
/// <param name="Share">The share of production jobs submitted by name that also run as a shadow job, in [0, 1]. Default: 1.</param>
public sealed record ShadowDefinition(int Version, double Share);
