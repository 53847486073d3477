using System.Data.Common;
using System.Text.RegularExpressions;
using Microsoft.Data.Sqlite;
using Ordo.Tools;
using SQLitePCL;

namespace Ordo.Sqlite;

/// <summary>
/// A SQLite connection held by one call of a <c>sql</c> tool, guarded inside SQLite for as long as the call holds it:
/// <list type="bullet">
/// <item>a progress handler interrupts the statement once the call's token fires (the tool's timeout, a cancelled
/// job): SQLite runs a statement to its end on the calling thread and never looks at a .NET token by itself;</item>
/// <item>an authorizer refuses what would reach beyond the tool's database or outlive the call on the pooled
/// connection: <c>ATTACH</c>, <c>DETACH</c>, <c>VACUUM</c> (which attaches its target, and <c>VACUUM INTO</c> writes
/// a file), <c>PRAGMA</c> other than a few that only describe the schema, temporary tables, views, triggers and indexes
/// (they would stay on the pooled connection and act on later calls), and the functions <c>load_extension</c>,
/// <c>fts3_tokenizer</c>, <c>readfile</c>, <c>writefile</c> and <c>edit</c>; for a read tool, every change too;</item>
/// <item>defensive mode, so that the schema cannot be written directly (<c>sqlite_master</c>, shadow tables).</item>
/// </list>
/// Every guard is removed, and a transaction the statement left open is rolled back, before the connection goes back
/// to its pool. The connection's <c>init:</c> script runs on a connection of its own and is not restricted.
/// </summary>
internal sealed partial class SqliteToolConnection : SqlToolConnection
{
    /// <summary>SQLite virtual machine instructions between two looks at the token: well under a millisecond of work.</summary>
    private const int ProgressInterval = 1000;

    /// <summary>PRAGMAs that only describe the tool's own schema, allowed in a tool's statement (also as <c>pragma_NAME(...)</c>).</summary>
    public static readonly IReadOnlySet<string> AllowedPragmas = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list",
    };

    /// <summary>Functions that reach the file system or the process: refused even where the build of SQLite has them.</summary>
    private static readonly HashSet<string> DeniedFunctions = new(StringComparer.OrdinalIgnoreCase)
    {
        "load_extension", "fts3_tokenizer", "readfile", "writefile", "edit",
    };

    private readonly sqlite3 _handle;
    private readonly CancellationToken _token;
    private readonly bool _readOnly;
    private readonly bool _mentionsVacuum;

    // Held for the life of the lease: SQLite calls them from native code.
    private readonly delegate_progress _progress;
    private readonly strdelegate_authorizer _authorizer;

    private volatile bool _aborted;
    private volatile string? _refused;
    private bool _leftTransactionOpen;

    public SqliteToolConnection(SqliteConnection db, ToolDefinition tool, CancellationToken token)
        : base(db)
    {
        _handle = db.Handle ?? throw new InvalidOperationException("the SQLite connection is not open");
        _token = token;
        _readOnly = tool.Effect == ToolEffect.Read;
        _mentionsVacuum = tool.Query is { } q && Vacuum().IsMatch(StringLiteral().Replace(q, "''"));
        _progress = _ => _aborted || _token.IsCancellationRequested ? 1 : 0;
        _authorizer = Authorize;
        raw.sqlite3_progress_handler(_handle, ProgressInterval, _progress, null);
        raw.sqlite3_set_authorizer(_handle, _authorizer, null);
        raw.sqlite3_db_config(_handle, raw.SQLITE_DBCONFIG_DEFENSIVE, 1, out _);
    }

    /// <inheritdoc />
    public override string? Refused => _refused;

    /// <inheritdoc />
    public override bool LeftTransactionOpen
    {
        get
        {
            _leftTransactionOpen |= raw.sqlite3_get_autocommit(_handle) == 0;
            return _leftTransactionOpen;
        }
    }

    /// <inheritdoc />
    public override long? ValueSize(DbDataReader reader, int ordinal)
    {
        // Asked only of text and blobs: asking the size of a number would convert it to text in place.
        if (reader is not SqliteDataReader { Handle: { } stmt }) return null;
        var type = raw.sqlite3_column_type(stmt, ordinal);
        return type is raw.SQLITE_TEXT or raw.SQLITE_BLOB ? raw.sqlite3_column_bytes(stmt, ordinal) : null;
    }

    /// <inheritdoc />
    public override void Abort() => _aborted = true;

    /// <inheritdoc />
    protected override async ValueTask DisposeAsyncCore()
    {
        try
        {
            raw.sqlite3_progress_handler(_handle, 0, null, null);
            raw.sqlite3_set_authorizer(_handle, (strdelegate_authorizer?)null, null);
            if (raw.sqlite3_get_autocommit(_handle) == 0)
            {
                // Left open by the statement (or by an interrupted one): the next call on this pooled connection
                // would run inside it, and it holds its locks meanwhile.
                _leftTransactionOpen = true;
                raw.sqlite3_exec(_handle, "ROLLBACK");
            }

            raw.sqlite3_db_config(_handle, raw.SQLITE_DBCONFIG_DEFENSIVE, 0, out _);
        }
        finally
        {
            await base.DisposeAsyncCore().ConfigureAwait(false);
        }
    }

    private int Authorize(object userData, int action, string param0, string param1, string dbName, string trigger)
    {
        if (_aborted) return raw.SQLITE_DENY;
        var refusal = action switch
        {
            raw.SQLITE_ATTACH => _mentionsVacuum ? "VACUUM is not allowed in a tool's statement" : "ATTACH is not allowed in a tool's statement",
            raw.SQLITE_DETACH => "DETACH is not allowed in a tool's statement",
            raw.SQLITE_PRAGMA when !AllowedPragmas.Contains(param0 ?? "") =>
                $"PRAGMA {param0} is not allowed in a tool's statement (allowed: {string.Join(", ", AllowedPragmas.Order(StringComparer.Ordinal))})",
            raw.SQLITE_FUNCTION when DeniedFunctions.Contains(param1 ?? "") => $"the function {param1}() is not allowed in a tool's statement",
            raw.SQLITE_CREATE_TEMP_TABLE or raw.SQLITE_CREATE_TEMP_VIEW or raw.SQLITE_CREATE_TEMP_TRIGGER or raw.SQLITE_CREATE_TEMP_INDEX
                or raw.SQLITE_DROP_TEMP_TABLE or raw.SQLITE_DROP_TEMP_VIEW or raw.SQLITE_DROP_TEMP_TRIGGER or raw.SQLITE_DROP_TEMP_INDEX =>
                "a temporary table, view, trigger or index is not allowed in a tool's statement (it would stay on the pooled connection after the call)",
            raw.SQLITE_CREATE_VTABLE or raw.SQLITE_DROP_VTABLE when string.Equals(dbName, "temp", StringComparison.OrdinalIgnoreCase) =>
                "a temporary virtual table is not allowed in a tool's statement (it would stay on the pooled connection after the call)",
            // A CREATE or DROP first writes the schema table; the action that follows names what the statement does.
            raw.SQLITE_INSERT or raw.SQLITE_UPDATE or raw.SQLITE_DELETE when IsSchemaTable(param0) => null,
            _ when _readOnly && Changes(action) => $"{ActionName(action)} is not allowed: the tool is effect: read",
            _ => null,
        };
        if (refusal is null) return raw.SQLITE_OK;
        _refused ??= refusal;
        return raw.SQLITE_DENY;
    }

    private static bool IsSchemaTable(string? table) => table is not null
        && (table.Equals("sqlite_master", StringComparison.OrdinalIgnoreCase) || table.Equals("sqlite_schema", StringComparison.OrdinalIgnoreCase)
            || table.Equals("sqlite_temp_master", StringComparison.OrdinalIgnoreCase) || table.Equals("sqlite_temp_schema", StringComparison.OrdinalIgnoreCase));

    private static bool Changes(int action) => action is raw.SQLITE_INSERT or raw.SQLITE_UPDATE or raw.SQLITE_DELETE
        or raw.SQLITE_CREATE_TABLE or raw.SQLITE_CREATE_INDEX or raw.SQLITE_CREATE_VIEW or raw.SQLITE_CREATE_TRIGGER or raw.SQLITE_CREATE_VTABLE
        or raw.SQLITE_DROP_TABLE or raw.SQLITE_DROP_INDEX or raw.SQLITE_DROP_VIEW or raw.SQLITE_DROP_TRIGGER or raw.SQLITE_DROP_VTABLE
        or raw.SQLITE_ALTER_TABLE or raw.SQLITE_REINDEX or raw.SQLITE_ANALYZE;

    private static string ActionName(int action) => action switch
    {
        raw.SQLITE_INSERT => "INSERT",
        raw.SQLITE_UPDATE => "UPDATE",
        raw.SQLITE_DELETE => "DELETE",
        raw.SQLITE_CREATE_TABLE or raw.SQLITE_CREATE_INDEX or raw.SQLITE_CREATE_VIEW or raw.SQLITE_CREATE_TRIGGER or raw.SQLITE_CREATE_VTABLE => "CREATE",
        raw.SQLITE_DROP_TABLE or raw.SQLITE_DROP_INDEX or raw.SQLITE_DROP_VIEW or raw.SQLITE_DROP_TRIGGER or raw.SQLITE_DROP_VTABLE => "DROP",
        raw.SQLITE_ALTER_TABLE => "ALTER TABLE",
        raw.SQLITE_REINDEX => "REINDEX",
        _ => "ANALYZE",
    };

    [GeneratedRegex(@"\bVACUUM\b", RegexOptions.IgnoreCase)]
    private static partial Regex Vacuum();

    [GeneratedRegex("'(?:[^']|'')*'")]
    private static partial Regex StringLiteral();
}
