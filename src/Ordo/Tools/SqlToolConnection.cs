using System.Data.Common;
using Ordo.Configuration;

namespace Ordo.Tools;

/// <summary>Opens database connections for <c>sql</c> tools, for one provider (<c>sqlite</c>, <c>postgres</c>).</summary>
public interface ISqlConnectionFactory
{
    /// <summary>The provider name used in <c>connections:</c>.</summary>
    string Provider { get; }

    /// <summary>
    /// Opens a connection for one call of <paramref name="tool"/> (creating and initializing a SQLite file on first use
    /// when the connection has <c>init:</c>). The connection keeps the tool's promises for as long as the call holds
    /// it: the statement is interrupted when <paramref name="cancellationToken"/> fires (the tool's timeout, a
    /// cancelled job); a tool with <c>effect: read</c> cannot write, and never creates a database that does not exist
    /// (other than by its <c>init:</c> script); and no statement reaches beyond the tool's own database.
    /// </summary>
    ValueTask<SqlToolConnection> OpenAsync(ConnectionDefinition connection, ToolDefinition tool, CancellationToken cancellationToken);

    /// <summary>Whether an exception is worth retrying (busy, deadlock, connection loss).</summary>
    bool IsTransient(Exception exception);
}

/// <summary>
/// A database connection held by one call of a <c>sql</c> tool. Disposing it ends what guards the call and gives the
/// connection back (to its pool).
/// </summary>
public class SqlToolConnection : IAsyncDisposable
{
    /// <summary>Wraps an open connection that needs no guards of its own.</summary>
    public SqlToolConnection(DbConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        Connection = connection;
    }

    /// <summary>The open connection.</summary>
    public DbConnection Connection { get; }

    /// <summary>
    /// Why the provider refused part of the statement (<c>ATTACH is not allowed in a tool's statement</c>), when a
    /// failure of the statement is such a refusal; null otherwise.
    /// </summary>
    public virtual string? Refused => null;

    /// <summary>Whether the statement left a transaction open (<c>BEGIN</c> without <c>COMMIT</c>); it is rolled back on dispose.</summary>
    public virtual bool LeftTransactionOpen => false;

    /// <summary>
    /// The size in bytes of a text or blob value of the current row, told without copying the value out of the
    /// database; null when the provider cannot tell.
    /// </summary>
    public virtual long? ValueSize(DbDataReader reader, int ordinal) => null;

    /// <summary>Stops the statement: what has not started yet does not start, what runs is interrupted.</summary>
    public virtual void Abort()
    {
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await DisposeAsyncCore().ConfigureAwait(false);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the guards and the connection.</summary>
    protected virtual ValueTask DisposeAsyncCore() => Connection.DisposeAsync();
}
