namespace Ordo.Sqlite;

/// <summary>How much a commit survives.</summary>
public enum SqliteDurability
{
    /// <summary>A commit survives a crash of the process (WAL, synchronous=NORMAL); the last commits can be lost on power loss.</summary>
    Normal,
    /// <summary>Every acknowledged commit survives power loss too (WAL, synchronous=FULL: an fsync per commit, shared by grouped commits).</summary>
    Full,
}

/// <summary>Options of the SQLite store.</summary>
public sealed class SqliteStoreOptions
{
    /// <summary>The database file. Default: <c>ordo.db</c> in the working directory.</summary>
    public string Path { get; set; } = "ordo.db";

    /// <summary>Durability of commits. Default: <see cref="SqliteDurability.Normal"/>.</summary>
    public SqliteDurability Durability { get; set; } = SqliteDurability.Normal;

    /// <summary>How long a write waits for another process holding the database's write lock. Default: 30 s.</summary>
    public TimeSpan BusyTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The most writes grouped into one transaction. Default: 256.</summary>
    public int MaxBatch { get; set; } = 256;

    /// <summary>
    /// Committed transactions between two background WAL checkpoints. Commits never run a checkpoint themselves
    /// (unless the WAL grows past <see cref="MaxWalPages"/>). Default: 500.
    /// </summary>
    public int CheckpointEvery { get; set; } = 500;

    /// <summary>
    /// The most pages the database file may grow to (SQLite's <c>max_page_count</c>), or null for SQLite's own limit. A
    /// write that would grow it further fails with <see cref="Storage.StoreUnavailableException"/> and writes nothing.
    /// Default: null.
    /// </summary>
    public long? MaxPageCount { get; set; }

    /// <summary>
    /// Opens the database read-only: nothing is created, migrated or written (not even the WAL setting), so commands
    /// that only read work on a read-only file, and a write fails with <see cref="Storage.StoreUnavailableException"/>.
    /// The file must be an Ordo database at this build's schema version. Default: false.
    /// </summary>
    public bool ReadOnly { get; set; }

    /// <summary>
    /// Whether every append to a job's log and every definition stored are also appended to the store-wide audit log
    /// (a Merkle tree that signed checkpoints pin, <c>docs/audit.md</c>): a definition in the same transaction, events sealed shortly after theirs (<see cref="AuditSealInterval"/>). Turn it off only to
    /// measure what it costs: what is written meanwhile is not in the log, and <c>ordo audit verify</c> names those
    /// jobs as not logged. Default: true.
    /// </summary>
    public bool AuditLog { get; set; } = true;

    /// <summary>
    /// How long an append's audit leaf may wait, after its commit, before it is sealed into the log (with every other
    /// leaf that waits, in one transaction). The append's events are durable at their commit, and the job's row records
    /// that they were logged, so a process that dies before sealing loses nothing: the next seal of any process
    /// seals them. Reading the log's size seals first, whatever the interval. Default: 1 second.
    /// </summary>
    public TimeSpan AuditSealInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>WAL size, in pages, at which a commit checkpoints by itself because the background checkpoints fell behind. Default: 4,000 (about 16 MB).</summary>
    public int MaxWalPages { get; set; } = 4000;
}
