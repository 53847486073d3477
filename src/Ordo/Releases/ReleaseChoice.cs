namespace Ordo.Releases;

/// <summary>The version a job submitted by name runs, and the version it is shadowed on, if any.</summary>
/// <param name="Version">The version the job runs.</param>
/// <param name="IsCanary">Whether that is the canary.</param>
/// <param name="ShadowVersion">The version a shadow job of it runs in dry run; null for none.</param>
public sealed record ReleaseChoice(int Version, bool IsCanary, int? ShadowVersion);
