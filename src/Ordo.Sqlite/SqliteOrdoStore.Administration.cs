using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.Data.Sqlite;
using Ordo.Events;
using Ordo.Queue;
using Ordo.State;
using Ordo.Storage;

namespace Ordo.Sqlite;

/// <summary>The store's administration: kill switches and their seeds, health queries.</summary>
public sealed partial class SqliteOrdoStore
{
    /// <inheritdoc />
    public async ValueTask SetKillSwitchAsync(KillSwitches.KillSwitch killSwitch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(killSwitch);
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        await Writer.WriteAsync(c =>
        {
            using var cmd = c.CreateCommand();
            cmd.CommandText = "INSERT OR REPLACE INTO kill_switches(tenant, target, reason, set_by, set_at) VALUES ($n, $t, $r, $b, $a)";
            cmd.Parameters.AddWithValue("$n", killSwitch.Tenant ?? "");
            cmd.Parameters.AddWithValue("$t", killSwitch.Target);
            cmd.Parameters.AddWithValue("$r", (object?)killSwitch.Reason ?? DBNull.Value);
            cmd.Parameters.AddWithValue("$b", killSwitch.SetBy);
            cmd.Parameters.AddWithValue("$a", Ms(killSwitch.SetAt));
            return cmd.ExecuteNonQuery();
        }).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<bool> ClearKillSwitchAsync(string target, string? tenant, CancellationToken cancellationToken = default)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        return await Writer.WriteAsync(c =>
        {
            using var cmd = c.CreateCommand();
            cmd.CommandText = "DELETE FROM kill_switches WHERE tenant = $n AND target = $t";
            cmd.Parameters.AddWithValue("$n", tenant ?? "");
            cmd.Parameters.AddWithValue("$t", target);
            return cmd.ExecuteNonQuery() > 0;
        }).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<KillSwitches.KillSwitch>> ListKillSwitchesAsync(CancellationToken cancellationToken = default)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        using var c = OpenReader();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT target, reason, set_by, set_at, tenant FROM kill_switches ORDER BY target, tenant";
        using var r = cmd.ExecuteReader();
        var list = new List<KillSwitches.KillSwitch>();
        while (r.Read())
        {
            list.Add(new KillSwitches.KillSwitch(r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1), r.GetString(2), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(3)),
                r.GetString(4) is { Length: > 0 } tenant ? tenant : null));
        }

        return list;
    }

    /// <inheritdoc />
    public async ValueTask SeedKillSwitchesAsync(string seed, IReadOnlyList<KillSwitches.KillSwitch> switches, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(switches);
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        await Writer.WriteAsync(c => SeedCore(c, seed, switches)).ConfigureAwait(false);
    }

    /// <summary>Sets a seed's switches unless the seed was set before; in the caller's transaction.</summary>
    private static int SeedCore(SqliteConnection c, string seed, IReadOnlyList<KillSwitches.KillSwitch> switches)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = "INSERT OR IGNORE INTO kill_switch_seeds(seed) VALUES ($s)";
        cmd.Parameters.AddWithValue("$s", seed);
        if (cmd.ExecuteNonQuery() == 0) return 0;
        foreach (var s in switches)
        {
            using var insert = c.CreateCommand();
            insert.CommandText = "INSERT OR IGNORE INTO kill_switches(tenant, target, reason, set_by, set_at) VALUES ($n, $t, $r, $b, $a)";
            insert.Parameters.AddWithValue("$n", s.Tenant ?? "");
            insert.Parameters.AddWithValue("$t", s.Target);
            insert.Parameters.AddWithValue("$r", (object?)s.Reason ?? DBNull.Value);
            insert.Parameters.AddWithValue("$b", s.SetBy);
            insert.Parameters.AddWithValue("$a", Ms(s.SetAt));
            insert.ExecuteNonQuery();
        }

        return switches.Count;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<JobRecord>> ListJobsWithoutWorkAsync(CancellationToken cancellationToken = default)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        using var c = OpenReader();
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"""
            SELECT {JobColumns} FROM jobs
            WHERE status IN ('queued', 'running', 'waiting_approval')
              AND NOT EXISTS (SELECT 1 FROM work_items w WHERE w.job_key = jobs.job_key)
            ORDER BY created_at, job_key
            """;
        using var r = cmd.ExecuteReader();
        var list = new List<JobRecord>();
        while (r.Read()) list.Add(ReadJob(r));
        return list;
    }
}
