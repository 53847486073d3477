using System.Collections.Concurrent;
using Npgsql;
using Ordo.Configuration;
using Ordo.Tools;

namespace Ordo.Postgres;

/// <summary>
/// Opens PostgreSQL connections for <c>sql</c> tools (<c>connections: { ledger: { postgres: "Host=...;Database=..." } }</c>),
/// pooled per connection string. A connection's <c>init:</c> script runs once per process, before the first call, under an
/// advisory lock so that processes starting together do not run it at the same time; it must be idempotent
/// (<c>CREATE TABLE IF NOT EXISTS</c>), since every process runs it. A tool with <c>effect: read</c> gets a session whose
/// transactions are read-only: PostgreSQL itself refuses its writes. Every session goes back to its pool reset (an open
/// transaction rolled back, settings discarded). The statement is cancelled on the server when the call's token fires.
/// </summary>
/// <remarks>Thread-safe.</remarks>
public sealed class PostgresConnectionFactory : ISqlConnectionFactory, IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, NpgsqlDataSource> _sources = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Lazy<Task>> _inits = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public string Provider => "postgres";

    /// <inheritdoc />
    public async ValueTask<SqlToolConnection> OpenAsync(ConnectionDefinition connection, ToolDefinition tool, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(tool);
        var source = _sources.GetOrAdd(connection.Target, Create);
        if (connection.InitSql is { } init)
        {
            var run = _inits.GetOrAdd(connection.Target, _ => new Lazy<Task>(() => InitializeAsync(source, init)));
            try
            {
                await run.Value.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Tried again by the next call.
                _inits.TryRemove(new KeyValuePair<string, Lazy<Task>>(connection.Target, run));
                throw;
            }
        }

        var c = await source.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (tool.Effect == ToolEffect.Read)
            {
                await using var cmd = new NpgsqlCommand("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", c);
                await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            return new SqlToolConnection(c);
        }
        catch
        {
            await c.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static NpgsqlDataSource Create(string connectionString)
    {
        var csb = new NpgsqlConnectionStringBuilder(connectionString);
        if (string.IsNullOrEmpty(csb.ApplicationName)) csb.ApplicationName = "ordo-sql-tool";
        return NpgsqlDataSource.Create(csb.ConnectionString);
    }

    private static async Task InitializeAsync(NpgsqlDataSource source, string initSql)
    {
        await using var c = await source.OpenConnectionAsync().ConfigureAwait(false);
        await using var tx = await c.BeginTransactionAsync().ConfigureAwait(false);
        await using (var lockCmd = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtextextended('ordo-sql-tool-init', 0))", c))
        {
            await lockCmd.ExecuteNonQueryAsync().ConfigureAwait(false);
        }

        await using (var cmd = new NpgsqlCommand(initSql, c))
        {
            await cmd.ExecuteNonQueryAsync().ConfigureAwait(false);
        }

        await tx.CommitAsync().ConfigureAwait(false);
    }

    /// <inheritdoc />
    public bool IsTransient(Exception exception) => exception switch
    {
        PostgresException p => p.SqlState is "40001" or "40P01" or "55P03" or "57P01" or "53300",
        NpgsqlException n => n.IsTransient,
        _ => false,
    };

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (var source in _sources.Values) await source.DisposeAsync().ConfigureAwait(false);
        _sources.Clear();
    }
}
