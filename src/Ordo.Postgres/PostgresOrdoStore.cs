using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Npgsql;
using Ordo.Events;
using Ordo.Storage;

namespace Ordo.Postgres;

/// <summary>
/// The store for many processes on many machines: everything in one PostgreSQL schema, reached through a pooled
/// <see cref="NpgsqlDataSource"/> with prepared statements. A step's commit is one round trip: its statements go as one
/// batch in one transaction, and the checks that guard it (the lease and its fencing token, the expected sequence
/// number) run inside that transaction and refuse it there. Workers claim with <c>FOR UPDATE SKIP LOCKED</c>, wake on
/// <c>LISTEN/NOTIFY</c>, and prove they are alive by holding a session advisory lock, so the leases of a worker whose
/// process died are taken over at once, and those of a worker that only stopped answering when they expire.
/// </summary>
/// <remarks>Thread-safe.</remarks>
public sealed partial class PostgresOrdoStore : IOrdoStore, IApiKeyStore
{
    private readonly PostgresStoreOptions _options;
    private readonly CancellationTokenSource _disposing = new();
    private readonly NpgsqlDataSource _dataSource;
    private readonly SemaphoreSlim _initGate = new(1, 1);
    private readonly ConcurrentDictionary<string, byte> _definitions = new(StringComparer.Ordinal);
    private readonly WorkerLocks _locks;
    private readonly CommitGate<JobCommit, CommitResult> _commitGate;
    // Commits sent ahead that may be at the server at once (PostgresStoreOptions.CommitsAhead); never disposed: it holds no wait handle.
    private readonly SemaphoreSlim _aheadSlots;
    private readonly CommitGate<NewJob, JobRecord> _submitGate;
    private readonly WorkListener _listener;
    private readonly WorkListener _endings;
    private readonly string _channel;
    private readonly string _endedChannel;
    private bool _initialized;
    private int _disposed;

    /// <summary>The most commits that waited for a slot written in one transaction.</summary>
    private const int MaxCommitGroup = 64;

    // The tenant a claim served last, so the next claim of this process starts with the one after it.
    private volatile string? _claimCursor;

    /// <summary>Creates a store (nothing is opened until <see cref="InitializeAsync"/> or the first call).</summary>
    /// <exception cref="ArgumentException">The connection string or the schema name is not valid.</exception>
    public PostgresOrdoStore(PostgresStoreOptions options)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        if (string.IsNullOrWhiteSpace(options.ConnectionString)) throw new ArgumentException("a PostgreSQL connection string is needed (Host=...;Database=...)", nameof(options));
        if (options.CommitSlots < 1) throw new ArgumentException($"CommitSlots must be at least 1 (got {options.CommitSlots})", nameof(options));
        if (options.CommitsAhead < 0) throw new ArgumentException($"CommitsAhead must be 0 or more (got {options.CommitsAhead})", nameof(options));
        NpgsqlConnectionStringBuilder csb;
        try
        {
            csb = new NpgsqlConnectionStringBuilder(options.ConnectionString);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or KeyNotFoundException)
        {
            throw new ArgumentException($"the PostgreSQL connection string is not valid: {e.Message}", nameof(options), e);
        }

        Schema = options.Schema ?? OnlySearchPath(csb.SearchPath) ?? "ordo";
        if (!SchemaName().IsMatch(Schema))
        {
            throw new ArgumentException($"'{Schema}' cannot name the Ordo schema: use lowercase letters, digits and underscores (at most 48, not starting with a digit)", nameof(options));
        }

        if (Schema.StartsWith("pg_", StringComparison.Ordinal) || Schema == "information_schema")
        {
            throw new ArgumentException($"'{Schema}' is a schema of PostgreSQL itself (pg_catalog, pg_temp, pg_toast, information_schema and every name starting with pg_ are reserved): name a schema of Ordo's own, such as ordo", nameof(options));
        }

        Host = string.IsNullOrEmpty(csb.Host) ? "localhost" : csb.Host;
        Port = csb.Port;
        Database = csb.Database ?? csb.Username ?? "";
        csb.SearchPath = Schema;
        // Statements are sent with the same text every time: prepare them on each connection after their second use.
        if (csb.MaxAutoPrepare == 0) csb.MaxAutoPrepare = 64;
        if (string.IsNullOrEmpty(csb.ApplicationName)) csb.ApplicationName = "ordo";
        // The store's statements leave nothing behind in a session (no settings, no session locks, no LISTEN: those have
        // connections of their own), so a pooled connection needs no reset when it is returned: a reset costs each
        // operation several statements on the server.
        _dataSource = new NpgsqlDataSourceBuilder(new NpgsqlConnectionStringBuilder(csb.ConnectionString) { NoResetOnClose = true }.ConnectionString).Build();
        _channel = "ordo_work_" + Schema;
        _endedChannel = "ordo_ended_" + Schema;
        _locks = new WorkerLocks(_dataSource, csb.ConnectionString, Schema);
        _aheadSlots = new SemaphoreSlim(Math.Max(1, options.CommitsAhead));
        _commitGate = new CommitGate<JobCommit, CommitResult>(options.CommitSlots, MaxCommitGroup, c => c.JobId.Value, cs => CommitTogetherAsync(cs, CancellationToken.None), CommitAloneAsync);
        _submitGate = new CommitGate<NewJob, JobRecord>(options.CommitSlots, MaxCommitGroup, j => j.JobId.Value, SubmitTogetherAsync, SubmitAloneAsync);
        _listener = new WorkListener(csb.ConnectionString, _channel, options.ListenCheckInterval, options.TimeProvider, _locks.CheckAsync);
        _endings = new WorkListener(csb.ConnectionString, _endedChannel, options.ListenCheckInterval, options.TimeProvider, _ => Task.CompletedTask);
    }

    /// <summary>Creates a store over a connection string, in the default schema.</summary>
    public PostgresOrdoStore(string connectionString) : this(new PostgresStoreOptions { ConnectionString = connectionString }) { }

    /// <summary>The schema that holds the tables.</summary>
    public string Schema { get; }

    /// <summary>The server's host, as the connection string names it.</summary>
    public string Host { get; }

    /// <summary>The server's port.</summary>
    public int Port { get; }

    /// <summary>The database.</summary>
    public string Database { get; }

    /// <summary>Where the store is, for messages: <c>postgres://host:port/database (schema s)</c>; never the password.</summary>
    public string Location => $"postgres://{Host}:{Port}/{Database} (schema {Schema})";

    /// <inheritdoc />
    public int SchemaVersion => PostgresSchema.Version;

    /// <summary>The pooled data source the store uses (for diagnostics and benchmarks; do not dispose it).</summary>
    public NpgsqlDataSource DataSource => _dataSource;

    /// <inheritdoc />
    public async ValueTask InitializeAsync(CancellationToken cancellationToken = default)
    {
        if (_initialized) return;
        await _initGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_initialized) return;
            await MigrateAsync(cancellationToken).ConfigureAwait(false);
            _initialized = true;
        }
        finally
        {
            _initGate.Release();
        }
    }

    /// <summary>
    /// Creates the schema or upgrades it, under a transaction-scoped advisory lock so that workers starting together do
    /// not race; each migration records its version in the same transaction.
    /// </summary>
    private async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await using var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var tx = await c.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await ExecAsync(c, "SELECT pg_advisory_xact_lock($1)", cancellationToken, Sql.Long(WorkerLocks.Key("migrate", Schema))).ConfigureAwait(false);
        var tables = new List<string>();
        await using (var cmd = Sql.Command(c, "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name", Sql.Text(Schema)))
        await using (var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await r.ReadAsync(cancellationToken).ConfigureAwait(false)) tables.Add(r.GetString(0));
        }

        if (tables.Count == 0 && !_options.CreateSchema)
        {
            throw new StoreUnavailableException($"there is no Ordo schema at {Location} (ordo db migrate creates it, and so does any command that writes)");
        }

        // Only what is missing is created: a role that may only read opens a schema that is up to date.
        if (tables.Count == 0) await ExecAsync(c, $"CREATE SCHEMA IF NOT EXISTS {Sql.Quote(Schema)}", cancellationToken).ConfigureAwait(false);
        var foreign = tables.Where(t => !PostgresSchema.Tables.Contains(t)).ToList();
        if (foreign.Count > 0 || (tables.Count > 0 && !tables.Contains("schema_version")))
        {
            var names = foreign.Count > 0 ? foreign : tables;
            throw new StoreUnavailableException($"{Location} is not an Ordo schema: it holds tables of another program ({string.Join(", ", names.Take(5))}{(names.Count > 5 ? ", …" : "")}); nothing was changed (name another schema with Search Path=NAME in the connection string)");
        }

        if (tables.Contains("schema_version") && await PostgresVersionTable.ForeignColumnsAsync(c, Schema, cancellationToken).ConfigureAwait(false) is { } columns)
        {
            throw new StoreUnavailableException($"{Location} is not an Ordo schema: its schema_version table is another program's (columns: {columns}); nothing was changed (name another schema with Search Path=NAME in the connection string)");
        }

        if (!tables.Contains("schema_version")) await ExecAsync(c, PostgresSchema.VersionTable, cancellationToken).ConfigureAwait(false);
        int version;
        await using (var cmd = Sql.Command(c, "SELECT coalesce(max(version), 0) FROM schema_version"))
        {
            version = Convert.ToInt32(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
        }

        if (version > PostgresSchema.Version)
        {
            throw new StoreUnavailableException($"{Location} has schema version {version}; this Ordo reads versions up to {PostgresSchema.Version} (a newer Ordo wrote it: use that version)");
        }

        foreach (var (v, description, sql) in PostgresSchema.Migrations)
        {
            if (v <= version) continue;
            await ExecAsync(c, sql, cancellationToken).ConfigureAwait(false);
            await ExecAsync(c, "INSERT INTO schema_version(version, description) VALUES ($1, $2)", cancellationToken, Sql.Int(v), Sql.Text(description)).ConfigureAwait(false);
        }

        // A schema whose version is current but a table of which was dropped is refused here, naming the table, rather
        // than failing on the first statement that needs it.
        if (version > 0)
        {
            var missing = new List<string>();
            await using (var cmd = Sql.Command(c, "SELECT t FROM unnest($1::text[]) t WHERE NOT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = $2 AND table_name = t) ORDER BY t",
                Sql.TextArray([.. PostgresSchema.Tables]), Sql.Text(Schema)))
            await using (var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                while (await r.ReadAsync(cancellationToken).ConfigureAwait(false)) missing.Add(r.GetString(0));
            }

            if (missing.Count > 0)
            {
                throw new StoreUnavailableException($"{Location} is damaged: its schema version is {PostgresSchema.Version} but it has no table {string.Join(", ", missing)}; nothing was changed (restore the schema from a backup: ordo db migrate does not create again what a version already applied created)");
            }
        }

        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Opens a pooled connection; a server that cannot be reached is reported with its host, port and database.</summary>
    private async ValueTask<NpgsqlConnection> OpenAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (Unavailable(e) is { } u)
        {
            throw u;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Read while logging in: the password file, the client certificate and key, the root certificate. Its path is
            // not repeated (it says where a secret is kept).
            var why = e is FileNotFoundException or DirectoryNotFoundException ? "it does not exist" : "it cannot be read by this user";
            throw new StoreUnavailableException($"PostgreSQL at {Host}:{Port}: a file the connection string names (Passfile, SSL Certificate, SSL Key or Root Certificate) cannot be used: {why}", e);
        }
    }

    /// <summary>The failures that mean the server cannot be used now, as the store reports them; null for anything else.</summary>
    internal StoreUnavailableException? Unavailable(Exception e) => e switch
    {
        StoreUnavailableException u => u,
        PostgresException { SqlState: "28P01" or "28000" } p => new StoreUnavailableException($"PostgreSQL at {Host}:{Port} refused the login: {p.MessageText}", p),
        PostgresException { SqlState: "3D000" } p => new StoreUnavailableException($"PostgreSQL at {Host}:{Port} has no database '{Database}': {p.MessageText} (create it first: createdb {Database})", p),
        PostgresException { SqlState: "53100" } p => new StoreUnavailableException($"PostgreSQL at {Host}:{Port} is out of disk space: {p.MessageText}", p),
        PostgresException { SqlState: "25006" } p => new StoreUnavailableException($"PostgreSQL at {Host}:{Port} is read-only (a standby?): {p.MessageText}", p),
        PostgresException { SqlState: "57P01" or "57P02" or "57P03" or "53300" } p => new StoreUnavailableException($"PostgreSQL at {Host}:{Port} cannot take connections now: {p.MessageText}", p),
        // A table, column or function of the schema was dropped after this process opened it.
        PostgresException { SqlState: "42P01" or "42703" or "42883" } p => new StoreUnavailableException($"{Location} is damaged: {p.MessageText} (restore the schema from a backup)", p),
        PostgresException => null,
        NpgsqlException or InvalidOperationException when NoPassword(e) => new StoreUnavailableException($"PostgreSQL at {Host}:{Port} requires a password and none was given (set Password or Passfile in the connection string, or PGPASSWORD)", e),
        NpgsqlException { InnerException: SocketException s } n => new StoreUnavailableException($"PostgreSQL at {Host}:{Port} cannot be reached: {s.Message}", n),
        NpgsqlException { InnerException: TimeoutException } n => new StoreUnavailableException($"PostgreSQL at {Host}:{Port} cannot be reached: the connection timed out", n),
        NpgsqlException { InnerException: IOException io } n => new StoreUnavailableException($"PostgreSQL at {Host}:{Port} closed the connection: {io.Message}", n),
        NpgsqlException n when n.IsTransient => new StoreUnavailableException($"PostgreSQL at {Host}:{Port} cannot be reached: {n.Message}", n),
        SocketException s => new StoreUnavailableException($"PostgreSQL at {Host}:{Port} cannot be reached: {s.Message}", s),
        _ => null,
    };

    /// <summary>Npgsql's refusal to log in without a password when the server asks for one (it never reaches the server).</summary>
    private static bool NoPassword(Exception e) => e.Message.StartsWith("No password has been provided", StringComparison.Ordinal);

    private static async Task ExecAsync(NpgsqlConnection c, string sql, CancellationToken cancellationToken, params NpgsqlParameter[] parameters)
    {
        await using var cmd = Sql.Command(c, sql, parameters);
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Runs a read on a pooled connection, mapping an unreachable server to <see cref="StoreUnavailableException"/>.</summary>
    private async ValueTask<T> ReadAsync<T>(Func<NpgsqlConnection, Task<T>> read, CancellationToken cancellationToken)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        await using var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await read(c).ConfigureAwait(false);
        }
        catch (Exception e) when (Unavailable(e) is { } u)
        {
            throw u;
        }
    }

    /// <summary>
    /// Runs a write, trying it again when PostgreSQL refused it for a deadlock or a serialization failure (the whole
    /// transaction was rolled back, so nothing of it was kept).
    /// </summary>
    /// <remarks>A write that may have appended to the audit log (<paramref name="appends"/>) asks for its pending leaves to be sealed soon.</remarks>
    private async ValueTask<T> WriteAsync<T>(Func<NpgsqlConnection, Task<T>> write, CancellationToken cancellationToken, bool appends = true)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        for (var attempt = 0; ; attempt++)
        {
            await using var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                var result = await write(c).ConfigureAwait(false);
                if (appends) SealSoon();
                return result;
            }
            catch (PostgresException e) when (e.SqlState is "40P01" or "40001" && attempt < _options.DeadlockRetries)
            {
                // Rolled back as a whole: try again on a fresh transaction.
            }
            catch (Exception e) when (Unavailable(e) is { } u)
            {
                throw u;
            }
        }
    }

    /// <summary>Runs a batch in one implicit transaction and reads the rows of the statements that return <c>item_id</c>, in order.</summary>
    private static async Task<List<(long Id, string Tenant)>> RunBatchAsync(NpgsqlBatch batch, CancellationToken cancellationToken)
    {
        var ids = new List<(long, string)>();
        await using var r = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        do
        {
            if (r.FieldCount == 2 && r.GetName(0) == "item_id")
            {
                while (await r.ReadAsync(cancellationToken).ConfigureAwait(false)) ids.Add((r.GetInt64(0), r.GetString(1)));
            }
            else
            {
                while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                }
            }
        }
        while (await r.NextResultAsync(cancellationToken).ConfigureAwait(false));
        return ids;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _disposing.CancelAsync().ConfigureAwait(false);
        await _backgroundSeal.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await _listener.DisposeAsync().ConfigureAwait(false);
        await _endings.DisposeAsync().ConfigureAwait(false);
        await _locks.DisposeAsync().ConfigureAwait(false);
        await _dataSource.DisposeAsync().ConfigureAwait(false);
        _initGate.Dispose();
        _disposing.Dispose();
    }

    private static long Ms(DateTimeOffset t) => t.ToUnixTimeMilliseconds();

    private static DateTimeOffset At(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    /// <summary>The one schema a connection string's <c>Search Path</c> names, or null when it names none.</summary>
    /// <exception cref="ArgumentException">It names several: which one holds the tables would be a guess.</exception>
    private static string? OnlySearchPath(string? searchPath)
    {
        if (string.IsNullOrWhiteSpace(searchPath)) return null;
        var names = searchPath.Split(',').Select(n => n.Trim().Trim('"')).Where(n => n.Length > 0).ToList();
        return names.Count switch
        {
            0 => null,
            1 => names[0],
            _ => throw new ArgumentException($"Search Path names {names.Count} schemas ({string.Join(", ", names)}): name exactly one, the schema that holds Ordo's tables (Search Path=ordo)", nameof(searchPath)),
        };
    }

    [GeneratedRegex("^[a-z_][a-z0-9_]{0,47}$")]
    private static partial Regex SchemaName();

    private static string Utf8(ReadOnlyMemory<byte> bytes) => System.Text.Encoding.UTF8.GetString(bytes.Span);
}
