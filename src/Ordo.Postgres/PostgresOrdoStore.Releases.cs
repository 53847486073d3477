using Ordo.Storage;

namespace Ordo.Postgres;

/// <summary>Release records: a canary's rollback with its figures, the first write of a workflow, kind and version winning.</summary>
public sealed partial class PostgresOrdoStore
{
    /// <inheritdoc />
    public async ValueTask<bool> AddReleaseRecordAsync(ReleaseRecord record, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        return await WriteAsync(async c =>
        {
            await using var cmd = Sql.Command(c, "INSERT INTO release_records(workflow, kind, version, at, reason, figures) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                Sql.Text(record.Workflow), Sql.Text(record.Kind), Sql.Int(record.Version), Sql.Long(Ms(record.At)), Sql.Text(record.Reason), Sql.Text(record.Figures));
            return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<ReleaseRecord>> ListReleaseRecordsAsync(string? workflow = null, CancellationToken cancellationToken = default)
        => await ReadAsync<IReadOnlyList<ReleaseRecord>>(async c =>
        {
            await using var cmd = Sql.Command(c, "SELECT workflow, kind, version, at, reason, figures FROM release_records WHERE $1::text IS NULL OR workflow = $1 ORDER BY at, workflow, version",
                Sql.Text(workflow));
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var list = new List<ReleaseRecord>();
            while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                list.Add(new ReleaseRecord(r.GetString(0), r.GetString(1), r.GetInt32(2), At(r.GetInt64(3)), r.GetString(4), r.GetString(5)));
            }

            return list;
        }, cancellationToken).ConfigureAwait(false);
}
