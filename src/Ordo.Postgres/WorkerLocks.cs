using System.Security.Cryptography;
using System.Text;
using Npgsql;

namespace Ordo.Postgres;

/// <summary>
/// Proves which workers are alive: each worker of this process holds a session advisory lock, keyed by its name, on a
/// connection kept open for that purpose. PostgreSQL releases the lock when the session ends — the process died, or its
/// connection was lost — and any process can see whether it is held in <c>pg_locks</c>. A lost connection is opened again
/// and the locks taken again (<see cref="CheckAsync"/>); meanwhile others may take the workers' leases over, and the
/// fencing tokens refuse what the workers then try to commit.
/// </summary>
internal sealed class WorkerLocks(NpgsqlDataSource dataSource, string connectionString, string schema) : IAsyncDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly HashSet<string> _held = new(StringComparer.Ordinal);
    private NpgsqlConnection? _connection;
    private bool _disposed;

    /// <summary>The 64-bit advisory lock key of a name in a schema.</summary>
    public static long Key(string name, string schema)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes($"ordo:{schema}:{name}"), hash);
        return BitConverter.ToInt64(hash[..8]);
    }

    /// <summary>Holds <paramref name="worker"/>'s lock from now on (once per worker; later calls cost nothing).</summary>
    public async ValueTask HoldAsync(string worker, CancellationToken cancellationToken)
    {
        lock (_held)
        {
            if (_held.Contains(worker)) return;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var c = await ConnectionAsync(cancellationToken).ConfigureAwait(false);
            await LockAsync(c, worker, cancellationToken).ConfigureAwait(false);
            lock (_held) _held.Add(worker);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Checks the lock connection; when it was lost, opens it again and takes every lock again.</summary>
    public async Task CheckAsync(CancellationToken cancellationToken)
    {
        string[] workers;
        lock (_held) workers = [.. _held];
        if (workers.Length == 0) return;
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_disposed) return;
            if (_connection is { } existing)
            {
                try
                {
                    await using var ping = new NpgsqlCommand("SELECT 1", existing);
                    await ping.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
                    return;
                }
                catch (Exception e) when (e is NpgsqlException or InvalidOperationException or IOException)
                {
                    await existing.DisposeAsync().ConfigureAwait(false);
                    _connection = null;
                }
            }

            var c = await ConnectionAsync(cancellationToken).ConfigureAwait(false);
            foreach (var w in workers) await LockAsync(c, w, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Whether any session holds <paramref name="worker"/>'s lock (this process's or another's).</summary>
    public bool IsHeld(string worker)
    {
        var key = Key(worker, schema);
        using var c = dataSource.OpenConnection();
        using var cmd = new NpgsqlCommand("""
            SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 1 AND granted)
            """, c);
        cmd.Parameters.Add(Sql.Long((key >> 32) & 0xFFFFFFFFL));
        cmd.Parameters.Add(Sql.Long(key & 0xFFFFFFFFL));
        return cmd.ExecuteScalar() is true;
    }

    private async ValueTask<NpgsqlConnection> ConnectionAsync(CancellationToken cancellationToken)
    {
        if (_connection is { State: System.Data.ConnectionState.Open } open) return open;
        if (_connection is not null) await _connection.DisposeAsync().ConfigureAwait(false);
        _connection = null;
        // Not from the pool: a pooled connection would be reset (and its locks released) when given back.
        var builder = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, KeepAlive = 10 };
        var c = new NpgsqlConnection(builder.ConnectionString);
        await c.OpenAsync(cancellationToken).ConfigureAwait(false);
        _connection = c;
        return c;
    }

    private async Task LockAsync(NpgsqlConnection c, string worker, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand("SELECT pg_advisory_lock($1)", c);
        cmd.Parameters.Add(Sql.Long(Key(worker, schema)));
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            _disposed = true;
            if (_connection is not null) await _connection.DisposeAsync().ConfigureAwait(false);
            _connection = null;
        }
        finally
        {
            _gate.Release();
        }
    }
}
