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
    private readonly string _connectionString;
    private readonly ConcurrentDictionary<JobId, long> _jobKeys = new();
    private readonly ConcurrentDictionary<long, (long RootKey, string Tenant)> _roots = new();
    private readonly ConcurrentDictionary<string, byte> _definitions = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _initGate = new(1, 1);
    private readonly WorkerLocks _locks;
    private readonly Doorbell _bell;
    private GroupCommitWriter? _writer;
    private WalCheckpointer? _checkpointer;
    private WriterStatements? _sql;

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
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = (int)Math.Ceiling(options.BusyTimeout.TotalSeconds),
        }.ToString();
        _locks = new WorkerLocks(Path.GetFullPath(options.Path));
        _bell = new Doorbell(_locks.Directory);
    }

    /// <summary>Creates a store over a file with default options.</summary>
    public SqliteOrdoStore(string path) : this(new SqliteStoreOptions { Path = path }) { }

    /// <summary>The full path of the database file.</summary>
    public string FilePath => Path.GetFullPath(_options.Path);

    /// <inheritdoc />
    public int SchemaVersion => SqliteSchema.Version;

    /// <inheritdoc />
    public async ValueTask InitializeAsync(CancellationToken cancellationToken = default)
    {
        if (_writer is not null) return;
        await _initGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_writer is not null) return;
            var directory = Path.GetDirectoryName(FilePath);
            if (!string.IsNullOrEmpty(directory)) Directory.CreateDirectory(directory);
            var connection = new SqliteConnection(_connectionString);
            connection.Open();
            Exec(connection, $"PRAGMA busy_timeout = {(int)_options.BusyTimeout.TotalMilliseconds}");
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
                using var check = connection.CreateCommand();
                check.CommandText = "SELECT value FROM meta WHERE key = 'schema_version'";
                var stored = check.ExecuteScalar() as string;
                if (stored is null)
                {
                    Exec(connection, $"INSERT INTO meta(key, value) VALUES ('schema_version', '{SqliteSchema.Version}')");
                }
                else if (!int.TryParse(stored, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var version) || version > SqliteSchema.Version)
                {
                    throw new OrdoException($"{FilePath} has schema version {stored}; this Ordo reads versions up to {SqliteSchema.Version} (a newer Ordo wrote it)");
                }
                else
                {
                    // Each upgrade in the same transaction: a database is at one version or the next, never between.
                    for (; version < SqliteSchema.Version; version++)
                    {
                        Exec(connection, SqliteSchema.Upgrades[version]);
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

            _sql = new WriterStatements(connection);
            SweepWorkerLocks(connection);
            _checkpointer = new WalCheckpointer(_connectionString, _options.CheckpointEvery);
            _writer = new GroupCommitWriter(connection, _options.MaxBatch, _checkpointer.Committed);
        }
        finally
        {
            _initGate.Release();
        }
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

    private GroupCommitWriter Writer => _writer ?? throw new InvalidOperationException("Call InitializeAsync first.");

    private WriterStatements Sql => _sql!;

    /// <summary>Write transactions this store has committed since it was opened; commits written together count once.</summary>
    public long TransactionsCommitted => _writer?.Transactions ?? 0;

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        _bell.Dispose();
        _locks.Dispose();
        _checkpointer?.Dispose();
        _writer?.Dispose();
        _sql?.Dispose();
        _writer?.Connection.Dispose();
        _initGate.Dispose();
        SqliteConnection.ClearPool(new SqliteConnection(_connectionString));
        return ValueTask.CompletedTask;
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
        => Sql.InsertEvent.Set(key, e.Seq, e.Type, e.StepId, e.Visit, e.Attempt, e.Scope, Ms(e.Timestamp), e.Agent, e.PromptHash, e.Model, e.Policy, new Utf8Text(e.Payload), e.Hash).ExecuteNonQuery();

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
