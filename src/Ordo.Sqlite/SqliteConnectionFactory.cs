using System.Collections.Concurrent;
using Microsoft.Data.Sqlite;
using Ordo.Configuration;
using Ordo.Tools;

namespace Ordo.Sqlite;

/// <summary>
/// Opens SQLite databases for <c>sql</c> tools; a connection with <c>init:</c> runs its script once, when the file is
/// created. Each call's connection is guarded while the call holds it (<see cref="SqliteToolConnection"/>): its
/// statement is interrupted when the call's token fires, and it cannot reach beyond the tool's database.
/// </summary>
public sealed class SqliteConnectionFactory : ISqlConnectionFactory
{
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _initGates = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public string Provider => "sqlite";

    /// <inheritdoc />
    public async ValueTask<SqlToolConnection> OpenAsync(ConnectionDefinition connection, ToolDefinition tool, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(tool);
        var readOnly = tool.Effect == ToolEffect.Read;
        var path = connection.Target;
        var cs = new SqliteConnectionStringBuilder
        {
            DataSource = path, Mode = readOnly ? SqliteOpenMode.ReadOnly : SqliteOpenMode.ReadWriteCreate, Pooling = true, DefaultTimeout = 30,
        }.ToString();
        if (connection.InitSql is not null && !File.Exists(path))
        {
            var gate = _initGates.GetOrAdd(path, _ => new SemaphoreSlim(1, 1));
            await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (!File.Exists(path))
                {
                    await InitializeAsync(path, connection.InitSql, cancellationToken).ConfigureAwait(false);
                }
            }
            finally
            {
                gate.Release();
            }
        }

        if (readOnly && !File.Exists(path))
        {
            // Opening it would create an empty file, which a later run would then take for an initialized database.
            throw new SqliteException($"database file '{path}' does not exist (a read tool never creates one; give the connection an 'init:' script, or create it first)", 14);
        }

        var db = new SqliteConnection(cs);
        try
        {
            await db.OpenAsync(cancellationToken).ConfigureAwait(false);
            return new SqliteToolConnection(db, tool, cancellationToken);
        }
        catch
        {
            await db.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Builds the database under a temporary name and moves it into place only once its script has run: opening the
    /// final path creates the file at once, so another thread or process that saw it before the script committed
    /// would query tables that do not exist yet.
    /// </summary>
    private static async Task InitializeAsync(string path, string initSql, CancellationToken cancellationToken)
    {
        var directory = Path.GetDirectoryName(path);
        if (!string.IsNullOrEmpty(directory)) Directory.CreateDirectory(directory);
        var building = $"{path}.init-{Guid.NewGuid():N}";
        try
        {
            var cs = new SqliteConnectionStringBuilder { DataSource = building, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = false }.ToString();
            await using (var init = new SqliteConnection(cs))
            {
                await init.OpenAsync(cancellationToken).ConfigureAwait(false);
                await using var tx = await init.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                await using var cmd = init.CreateCommand();
                cmd.Transaction = (SqliteTransaction)tx;
                cmd.CommandText = initSql;
                await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
            }

            try
            {
                File.Move(building, path, overwrite: false);
            }
            catch (IOException) when (File.Exists(path))
            {
                // Another process created it first; its copy is complete too.
            }
        }
        finally
        {
            File.Delete(building);
        }
    }

    /// <inheritdoc />
    public bool IsTransient(Exception exception) => exception is SqliteException { SqliteErrorCode: 5 or 6 };
}
