using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.Data.Sqlite;
using Ordo.Events;
using Ordo.Queue;
using Ordo.State;
using Ordo.Storage;

namespace Ordo.Sqlite;

/// <summary>
/// The embedded store: everything in one SQLite file in WAL mode. All writes go through one connection and are
/// group-committed; reads use their own pooled connections and never wait for writes. Several processes may open
/// the same file: each write transaction takes SQLite's write lock, and every write is conditional, so processes
/// cannot fork a log or run the same work item twice.
/// </summary>
/// <remarks>Thread-safe.</remarks>
public sealed partial class SqliteOrdoStore : IOrdoStore
{
    private readonly SqliteStoreOptions _options;
    private string _connectionString;
    private readonly ConcurrentDictionary<JobId, long> _jobKeys = new();
    private readonly ConcurrentDictionary<long, (long RootKey, string Tenant)> _roots = new();
    private readonly ConcurrentDictionary<string, byte> _definitions = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _initGate = new(1, 1);
    private readonly WorkerLocks _locks;

    // The tenant a claim served last, so the next claim starts with the one after it. Only the writer's leader reads
    // and writes it (claims run on the writer), and it is kept per process: each process rotates on its own.
    private string? _claimCursor;
    private readonly Doorbell _bell;
    private GroupCommitWriter? _writer;
    private WalCheckpointer? _checkpointer;
    private WriterStatements? _sql;
    private SqliteAuditLog? _auditLog;

    /// <summary>Creates a store over a file (created on first use).</summary>
    public SqliteOrdoStore(SqliteStoreOptions options)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxBatch, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.CheckpointEvery, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxWalPages, 1);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = Path.GetFullPath(options.Path),
            Mode = options.ReadOnly ? SqliteOpenMode.ReadOnly : SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = (int)Math.Ceiling(options.BusyTimeout.TotalSeconds),
        }.ToString();
        _locks = new WorkerLocks(Path.GetFullPath(options.Path));
        _bell = new Doorbell(_locks.Directory);
    }

    /// <summary>Whether the store was opened read-only.</summary>
    public bool IsReadOnly => _options.ReadOnly;

    /// <summary>Creates a store over a file with default options.</summary>
    public SqliteOrdoStore(string path) : this(new SqliteStoreOptions { Path = path }) { }

    /// <summary>The full path of the database file.</summary>
    public string FilePath => Path.GetFullPath(_options.Path);

    /// <inheritdoc />
    public int SchemaVersion => SqliteSchema.Version;

    /// <summary>
    /// The SQLite application id of an Ordo database ("ORDO"), in the file's header: a database that carries another
    /// program's id, or tables that are not Ordo's, is never written.
    /// </summary>
    public const int ApplicationId = 0x4F52444F;

    /// <inheritdoc />
    public async ValueTask InitializeAsync(CancellationToken cancellationToken = default)
    {
        if (_writer is not null || _openedReadOnly) return;
        await _initGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_writer is not null || _openedReadOnly) return;
            if (_options.ReadOnly)
            {
                OpenReadOnly();
                return;
            }

            var directory = Path.GetDirectoryName(FilePath);
            if (!string.IsNullOrEmpty(directory)) Directory.CreateDirectory(directory);
            var connection = new SqliteConnection(_connectionString);
            connection.Open();
            Exec(connection, $"PRAGMA busy_timeout = {(int)_options.BusyTimeout.TotalMilliseconds}");
            bool stamped;
            try
            {
                // Before anything that writes (even the WAL setting changes the file's header).
                stamped = CheckOwnership(connection) == Ownership.Stamped;
            }
            catch
            {
                connection.Dispose();
                throw;
            }

            Exec(connection, "PRAGMA journal_mode = WAL");
            Exec(connection, _options.Durability == SqliteDurability.Full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
            Exec(connection, "PRAGMA temp_store = MEMORY");
            Exec(connection, "PRAGMA cache_size = -16000");
            Exec(connection, $"PRAGMA wal_autocheckpoint = {_options.MaxWalPages}");
            if (_options.MaxPageCount is { } maxPages) Exec(connection, $"PRAGMA max_page_count = {maxPages}");
            Exec(connection, "BEGIN IMMEDIATE");
            try
            {
                Exec(connection, SqliteSchema.Create);
                if (!stamped) Exec(connection, $"PRAGMA application_id = {ApplicationId}");
                using var check = connection.CreateCommand();
                check.CommandText = "SELECT value FROM meta WHERE key = 'schema_version'";
                var stored = check.ExecuteScalar() as string;
                if (stored is null)
                {
                    Exec(connection, $"INSERT INTO meta(key, value) VALUES ('schema_version', '{SqliteSchema.Version}')");
                }
                else if (!int.TryParse(stored, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var version) || version > SqliteSchema.Version)
                {
                    throw new StoreUnavailableException($"{FilePath} has schema version {stored}; this Ordo reads versions up to {SqliteSchema.Version} (a newer Ordo wrote it: use that version)");
                }
                else
                {
                    // Each upgrade in the same transaction: a database is at one version or the next, never between.
                    for (; version < SqliteSchema.Version; version++)
                    {
                        Exec(connection, SqliteSchema.Upgrades[version]);
                        if (version + 1 == SqliteSchema.AuditLogVersion) SqliteAuditLog.Backfill(connection);
                    }

                    Exec(connection, $"UPDATE meta SET value = '{SqliteSchema.Version}' WHERE key = 'schema_version'");
                }

                Exec(connection, "COMMIT");
            }
            catch
            {
                Exec(connection, "ROLLBACK");
                connection.Dispose();
                throw;
            }

            _sql = new WriterStatements(connection, _options.AuditLog);
            SweepWorkerLocks(connection);
            _checkpointer = new WalCheckpointer(_connectionString, _options.CheckpointEvery);
            _auditLog = _options.AuditLog ? new SqliteAuditLog(connection, SealSoon) : null;
            _writer = new GroupCommitWriter(connection, _options.MaxBatch, _checkpointer.Committed, _auditLog);
        }
        finally
        {
            _initGate.Release();
        }
    }

    /// <summary>Opens a read-only store: checks that the file is an Ordo database this build can read as it is.</summary>
    private void OpenReadOnly()
    {
        if (!File.Exists(FilePath)) throw new StoreUnavailableException($"there is no Ordo database at {FilePath}");
        var connection = new SqliteConnection(_connectionString);
        try
        {
            connection.Open();
            CheckReadable(connection);
        }
        catch (SqliteException e) when (e.SqliteErrorCode is 8 or 14 && !HasPendingWal())
        {
            // A WAL database needs its shared-memory file to be read; where it cannot be created (a read-only folder)
            // and no log is waiting to be merged, the file is read as it is: nothing can write it meanwhile.
            connection.Dispose();
            _connectionString = new SqliteConnectionStringBuilder(_connectionString) { DataSource = new Uri(FilePath).AbsoluteUri + "?immutable=1" }.ToString();
            connection = new SqliteConnection(_connectionString);
            connection.Open();
            CheckReadable(connection);
        }
        finally
        {
            connection.Dispose();
        }

        _openedReadOnly = true;
    }

    private bool HasPendingWal() => new FileInfo(FilePath + "-wal") is { Exists: true, Length: > 0 };

    private void CheckReadable(SqliteConnection connection)
    {
        if (CheckOwnership(connection) == Ownership.Empty)
        {
            throw new NotAnOrdoDatabaseException(FilePath, "it is empty");
        }

        using var cmd = connection.CreateCommand();
        cmd.CommandText = "SELECT value FROM meta WHERE key = 'schema_version'";
        var stored = cmd.ExecuteScalar() as string;
        if (stored != SqliteSchema.Version.ToString(System.Globalization.CultureInfo.InvariantCulture))
        {
            throw new StoreUnavailableException($"{FilePath} has schema version {stored ?? "(none)"}; this Ordo reads version {SqliteSchema.Version} (run `ordo db migrate --db {FilePath}`, which needs write access)");
        }
    }

    /// <summary>Whose a database file is, as far as Ordo may write it.</summary>
    private enum Ownership
    {
        /// <summary>Empty: it becomes an Ordo database.</summary>
        Empty,
        /// <summary>An Ordo database written before the application id was set: it gets it at the next write.</summary>
        Unstamped,
        /// <summary>An Ordo database carrying Ordo's application id.</summary>
        Stamped,
    }

    /// <summary>
    /// Refuses a database that is not Ordo's: one whose header carries another application id, or which holds tables
    /// Ordo does not create.
    /// </summary>
    /// <exception cref="NotAnOrdoDatabaseException">The file belongs to another program.</exception>
    private Ownership CheckOwnership(SqliteConnection connection)
    {
        using var cmd = connection.CreateCommand();
        cmd.CommandText = "PRAGMA application_id";
        var id = Convert.ToInt64(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        if (id == ApplicationId) return Ownership.Stamped;
        if (id != 0) throw new NotAnOrdoDatabaseException(FilePath, $"its header carries another program's application id (0x{id:X8})");
        cmd.CommandText = "SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, 7) <> 'sqlite_' ORDER BY name";
        var tables = new List<string>();
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read()) tables.Add(r.GetString(0));
        }

        if (tables.Count == 0) return Ownership.Empty;
        var foreign = tables.Where(t => !SqliteSchema.Tables.Contains(t)).ToList();
        if (foreign.Count > 0 || !tables.Contains("meta"))
        {
            var names = foreign.Count > 0 ? foreign : tables;
            throw new NotAnOrdoDatabaseException(FilePath, $"it holds tables of another program ({string.Join(", ", names.Take(5))}{(names.Count > 5 ? ", …" : "")})");
        }

        return Ownership.Unstamped;
    }

    /// <summary>Reads the effective journal mode and synchronous setting of the writer connection (for benchmarks and diagnostics).</summary>
    public (string JournalMode, string Synchronous) GetPragmas()
    {
        var c = Writer.Connection;
        using var cmd = c.CreateCommand();
        cmd.CommandText = "PRAGMA journal_mode";
        var mode = cmd.ExecuteScalar() as string ?? "";
        cmd.CommandText = "PRAGMA synchronous";
        var sync = Convert.ToInt64(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) switch { 0 => "OFF", 1 => "NORMAL", 2 => "FULL", 3 => "EXTRA", _ => "?" };
        return (mode, sync);
    }

    private GroupCommitWriter Writer => _writer ?? (_openedReadOnly
        ? throw new StoreUnavailableException($"{FilePath} is open read-only: this command does not write")
        : throw new InvalidOperationException("Call InitializeAsync first."));

    private bool _openedReadOnly;

    private WriterStatements Sql => _sql!;

    /// <summary>Write transactions this store has committed since it was opened; commits written together count once.</summary>
    public long TransactionsCommitted => _writer?.Transactions ?? 0;

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 1) return;
        await SealOnCloseAsync().ConfigureAwait(false);
        _bell.Dispose();
        _locks.Dispose();
        _checkpointer?.Dispose();
        _writer?.Dispose();
        _sql?.Dispose();
        _auditLog?.Dispose();
        _writer?.Connection.Dispose();
        _initGate.Dispose();
        SqliteConnection.ClearPool(new SqliteConnection(_connectionString));
    }

    private SqliteConnection OpenReader()
    {
        var c = new SqliteConnection(_connectionString);
        c.Open();
        return c;
    }

    private async ValueTask<long?> GetJobKeyAsync(JobId jobId, CancellationToken cancellationToken)
    {
        if (_jobKeys.TryGetValue(jobId, out var key)) return key;
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        using var c = OpenReader();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT job_key FROM jobs WHERE job_id = $id";
        cmd.Parameters.AddWithValue("$id", jobId.Value);
        if (cmd.ExecuteScalar() is long k)
        {
            _jobKeys[jobId] = k;
            return k;
        }

        return null;
    }

    private void InsertEvent(long key, EventEnvelope e)
        => Sql.InsertEvent.Set(key, e.Seq, e.Type, e.StepId, e.Visit, e.Attempt, e.Scope, Ms(e.Timestamp), e.Agent, e.PromptHash, e.Model, e.Policy, new Utf8Text(e.Payload), e.Hash, e.TraceId, e.SpanId).ExecuteNonQuery();

    private long InsertItem(long key, long rootKey, string tenant, NewWorkItem item, long nowMs)
    {
        var leased = item.LeaseOwner is not null;
        if (leased) _locks.Hold(item.LeaseOwner!);
        return Sql.InsertItem.Set(
            key, rootKey, item.Step.WorkKey, item.Step.StepId, item.Step.Visit, item.Step.Attempt, item.Step.Scope, tenant, item.Priority,
            Ms(item.AvailableAt), leased ? Ms(item.LeaseExpiresAt) : Ms(item.AvailableAt), item.LeaseOwner, leased ? 1 : 0, leased ? 1 : 0, nowMs).ExecuteInsert();
    }

    private (long RootKey, string Tenant) ReadRootAndTenant(long key)
    {
        if (_roots.TryGetValue(key, out var known)) return known;
        using var r = Sql.RootAndTenant.Set(key).ExecuteReader();
        if (!r.Read()) throw new InvalidDataException($"job key {key} has no root job");
        var value = (r.GetInt64(0), r.GetString(1));
        _roots[key] = value;
        return value;
    }

    private (JobId JobId, long LastSeq, byte[] Head, string Status) ReadHead(long key)
    {
        using var r = Sql.Head.Set(key).ExecuteReader();
        r.Read();
        return (new JobId(r.GetString(0)), r.GetInt64(1), r.GetBlob(2), r.GetString(3));
    }

    private static long Ms(DateTimeOffset t) => t.ToUnixTimeMilliseconds();

    private static void Exec(SqliteConnection c, string sql)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    private sealed record StartedJob(JobId JobId, long Key, long RootKey, string Tenant, string DefinitionHash);

    private sealed class CommitRejectedException(CommitOutcome outcome) : Exception(outcome.ToString())
    {
        public CommitOutcome Outcome { get; } = outcome;
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string[]), TypeInfoPropertyName = "StringArray")]
internal sealed partial class ClaimJson : System.Text.Json.Serialization.JsonSerializerContext;

/// <summary>A database file that belongs to another program: Ordo neither writes nor reads it.</summary>
public sealed class NotAnOrdoDatabaseException(string path, string why)
    : OrdoException($"{path} is not an Ordo database: {why}; nothing was changed (name another file with --db)")
{
    /// <summary>The file.</summary>
    public string Path { get; } = path;
}
