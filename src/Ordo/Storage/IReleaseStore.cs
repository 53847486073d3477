namespace Ordo.Storage;

/// <summary>
/// A durable decision about a release: a canary rolled back by itself (<see cref="ReleaseRecordKinds.RolledBack"/>), with
/// the figures that passed its bound. One per workflow, kind and version: the first write wins.
/// </summary>
/// <param name="Workflow">The workflow name.</param>
/// <param name="Kind">What was decided (<see cref="ReleaseRecordKinds"/>).</param>
/// <param name="Version">The version it was decided about.</param>
/// <param name="At">When.</param>
/// <param name="Reason">Why, in a sentence (the bound passed).</param>
/// <param name="Figures">The figures judged, as a JSON object.</param>
public sealed record ReleaseRecord(string Workflow, string Kind, int Version, DateTimeOffset At, string Reason, string Figures);

/// <summary>The kinds of <see cref="ReleaseRecord"/>.</summary>
public static class ReleaseRecordKinds
{
    /// <summary>A canary passed a bound of <c>rollback_when</c>: its share is 0 from then on.</summary>
    public const string RolledBack = "ReleaseRolledBack";
}

/// <summary>The release records of the store.</summary>
public interface IReleaseStore
{
    /// <summary>Keeps a record; false (and nothing written) when one of the same workflow, kind and version exists.</summary>
    ValueTask<bool> AddReleaseRecordAsync(ReleaseRecord record, CancellationToken cancellationToken = default);

    /// <summary>The records of one workflow (or of all), oldest first.</summary>
    ValueTask<IReadOnlyList<ReleaseRecord>> ListReleaseRecordsAsync(string? workflow = null, CancellationToken cancellationToken = default);
}
