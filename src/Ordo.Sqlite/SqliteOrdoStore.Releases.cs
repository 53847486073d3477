using Ordo.Storage;

namespace Ordo.Sqlite;

/// <summary>Release records: a canary's rollback with its figures.</summary>
public sealed partial class SqliteOrdoStore
{
    /// <inheritdoc />
    public async ValueTask<bool> AddReleaseRecordAsync(ReleaseRecord record, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        return await Writer.WriteAsync(c =>
        {
            using var cmd = c.CreateCommand();
            cmd.CommandText = "INSERT OR IGNORE INTO release_records(workflow, kind, version, at, reason, figures) VALUES ($w, $k, $v, $a, $r, $f)";
            cmd.Parameters.AddWithValue("$w", record.Workflow);
            cmd.Parameters.AddWithValue("$k", record.Kind);
            cmd.Parameters.AddWithValue("$v", record.Version);
            cmd.Parameters.AddWithValue("$a", Ms(record.At));
            cmd.Parameters.AddWithValue("$r", record.Reason);
            cmd.Parameters.AddWithValue("$f", record.Figures);
            return cmd.ExecuteNonQuery() == 1;
        }).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<ReleaseRecord>> ListReleaseRecordsAsync(string? workflow = null, CancellationToken cancellationToken = default)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        using var c = OpenReader();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT workflow, kind, version, at, reason, figures FROM release_records WHERE $w IS NULL OR workflow = $w ORDER BY at, workflow, version";
        cmd.Parameters.AddWithValue("$w", (object?)workflow ?? DBNull.Value);
        using var r = cmd.ExecuteReader();
        var list = new List<ReleaseRecord>();
        while (r.Read())
        {
            list.Add(new ReleaseRecord(r.GetString(0), r.GetString(1), r.GetInt32(2), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(3)), r.GetString(4), r.GetString(5)));
        }

        return list;
    }
}
