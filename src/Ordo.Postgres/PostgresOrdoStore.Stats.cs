using Ordo.Stats;
using Ordo.Storage;

namespace Ordo.Postgres;

/// <summary>The summary rows of <c>ordo stats</c> and the release records.</summary>
public sealed partial class PostgresOrdoStore
{
    /// <inheritdoc />
    public ValueTask<StatsData> ReadStatsAsync(StatsQuery query, CancellationToken cancellationToken = default)
        => throw new NotSupportedException("ordo stats is not available on PostgreSQL in this build");

    /// <inheritdoc />
    public ValueTask<bool> AddReleaseRecordAsync(ReleaseRecord record, CancellationToken cancellationToken = default)
        => throw new NotSupportedException("release records are not available on PostgreSQL in this build");

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<ReleaseRecord>> ListReleaseRecordsAsync(string? workflow = null, CancellationToken cancellationToken = default)
        => throw new NotSupportedException("release records are not available on PostgreSQL in this build");
}
