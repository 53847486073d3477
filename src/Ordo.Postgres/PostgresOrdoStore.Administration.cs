using Npgsql;
using Ordo.Storage;

namespace Ordo.Postgres;

/// <summary>The store's administration: kill switches and their seeds, health queries.</summary>
public sealed partial class PostgresOrdoStore
{
    /// <inheritdoc />
    public async ValueTask SetKillSwitchAsync(KillSwitches.KillSwitch killSwitch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(killSwitch);
        await WriteAsync(async c =>
        {
            await ExecAsync(c, """
                INSERT INTO kill_switches(target, reason, set_by, set_at, tenant) VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (tenant, target) DO UPDATE SET reason = excluded.reason, set_by = excluded.set_by, set_at = excluded.set_at
                """, cancellationToken, Sql.Text(killSwitch.Target), Sql.Text(killSwitch.Reason), Sql.Text(killSwitch.SetBy), Sql.Long(Ms(killSwitch.SetAt)), Sql.Text(killSwitch.Tenant ?? "")).ConfigureAwait(false);
            return 0;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<bool> ClearKillSwitchAsync(string target, string? tenant, CancellationToken cancellationToken = default)
        => await WriteAsync(async c =>
        {
            await using var cmd = Sql.Command(c, "DELETE FROM kill_switches WHERE tenant = $2 AND target = $1", Sql.Text(target), Sql.Text(tenant ?? ""));
            return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) > 0;
        }, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<KillSwitches.KillSwitch>> ListKillSwitchesAsync(CancellationToken cancellationToken = default)
        => await ReadAsync(async c =>
        {
            await using var cmd = Sql.Command(c, "SELECT target, reason, set_by, set_at, tenant FROM kill_switches ORDER BY target, tenant");
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var list = new List<KillSwitches.KillSwitch>();
            while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                list.Add(new KillSwitches.KillSwitch(r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1), r.GetString(2), At(r.GetInt64(3)),
                    r.GetString(4) is { Length: > 0 } tenant ? tenant : null));
            }

            return (IReadOnlyList<KillSwitches.KillSwitch>)list;
        }, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask SeedKillSwitchesAsync(string seed, IReadOnlyList<KillSwitches.KillSwitch> switches, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(switches);
        await WriteAsync(async c =>
        {
            await using var batch = new NpgsqlBatch(c);
            AddSeed(batch, seed, switches);
            await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return 0;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Sets a seed's switches unless the seed was set before, in one statement of the caller's transaction.</summary>
    private static void AddSeed(NpgsqlBatch batch, string seed, IReadOnlyList<KillSwitches.KillSwitch> switches)
        => batch.BatchCommands.Add(Sql.Command("""
            WITH s AS (INSERT INTO kill_switch_seeds(seed) VALUES ($1) ON CONFLICT (seed) DO NOTHING RETURNING 1)
            INSERT INTO kill_switches(target, reason, set_by, set_at, tenant)
            SELECT t, r, b, a, n FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[]) AS k(t, r, b, a, n) WHERE EXISTS (SELECT 1 FROM s)
            ON CONFLICT (tenant, target) DO NOTHING
            """,
            Sql.Text(seed), Sql.TextArray([.. switches.Select(s => s.Target)]), Sql.TextArray([.. switches.Select(s => s.Reason)]),
            Sql.TextArray([.. switches.Select(s => s.SetBy)]), Sql.LongArray([.. switches.Select(s => Ms(s.SetAt))]),
            Sql.TextArray([.. switches.Select(s => s.Tenant ?? "")])));

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<JobRecord>> ListJobsWithoutWorkAsync(CancellationToken cancellationToken = default)
        => await ReadJobsAsync($"""
            SELECT {JobColumns} FROM jobs
            WHERE status IN ('queued', 'running', 'waiting_approval')
              AND NOT EXISTS (SELECT 1 FROM work_items w WHERE w.job_id = jobs.job_id)
            ORDER BY created_at, job_key
            """, cancellationToken).ConfigureAwait(false);
}
