using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using Ordo.Sqlite;

namespace Ordo.Cli.Bench;

/// <summary>What a benchmark database holds: row counts and bytes per job, pragmas, sizes; and WAL checkpoints.</summary>
internal static class SqliteFacts
{
    public static long Scalar(SqliteConnection c, string sql, params (string Name, object Value)[] args)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (name, value) in args) cmd.Parameters.AddWithValue(name, value);
        var v = cmd.ExecuteScalar();
        return v is null or DBNull ? 0 : Convert.ToInt64(v, CultureInfo.InvariantCulture);
    }

    public static string Version(SqliteConnection c)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT sqlite_version()";
        return cmd.ExecuteScalar() as string ?? "?";
    }

    /// <summary>Runs <c>PRAGMA wal_checkpoint(TRUNCATE)</c> until it is not blocked: afterwards the main file holds everything and the WAL is empty.</summary>
    public static async Task CheckpointTruncateAsync(SqliteConnection c)
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            using (var cmd = c.CreateCommand())
            {
                cmd.CommandText = "PRAGMA wal_checkpoint(TRUNCATE)";
                using var r = cmd.ExecuteReader();
                if (r.Read() && r.GetInt64(0) == 0) return;
            }

            await Task.Delay(20).ConfigureAwait(false);
        }

        throw new BenchFailedException("PRAGMA wal_checkpoint(TRUNCATE) stayed busy");
    }

    /// <summary>The rows and bytes one job left in the store.</summary>
    public static JsonObject JobRows(SqliteConnection c, JobId job)
    {
        var key = Scalar(c, "SELECT job_key FROM jobs WHERE job_id = $id", ("$id", job.Value));
        var k = ("$k", (object)key);
        return new JsonObject
        {
            ["job_rows"] = 1,
            ["events"] = Scalar(c, "SELECT count(*) FROM events WHERE job_key = $k", k),
            ["event_payload_bytes_total"] = Scalar(c, "SELECT coalesce(sum(length(payload)), 0) FROM events WHERE job_key = $k", k),
            ["snapshots"] = Scalar(c, "SELECT count(*) FROM snapshots WHERE job_key = $k", k),
            ["snapshot_bytes"] = Scalar(c, "SELECT coalesce(sum(length(state)), 0) FROM snapshots WHERE job_key = $k", k),
            ["work_items_left"] = Scalar(c, "SELECT count(*) FROM work_items WHERE job_key = $k", k),
            ["definition_bytes"] = Scalar(c, "SELECT coalesce(sum(length(d.content)), 0) FROM definitions d JOIN jobs j ON j.definition_hash = d.hash WHERE j.job_key = $k", k),
        };
    }

    /// <summary>The effective settings and contents of a workload's database, like the peer's <c>sqliteInfo</c>.</summary>
    public static JsonObject Info(BenchDatabase db, SqliteOrdoStore store)
    {
        var (mode, sync) = store.GetPragmas();
        using var c = db.OpenInspector();
        return new JsonObject
        {
            ["journal_mode"] = mode,
            ["synchronous"] = sync,
            ["job_rows"] = Scalar(c, "SELECT count(*) FROM jobs"),
            ["event_rows"] = Scalar(c, "SELECT count(*) FROM events"),
            ["snapshot_rows"] = Scalar(c, "SELECT count(*) FROM snapshots"),
            ["work_item_rows"] = Scalar(c, "SELECT count(*) FROM work_items"),
            ["db_bytes"] = db.FileBytes,
            ["wal_bytes"] = db.WalBytes,
        };
    }
}
