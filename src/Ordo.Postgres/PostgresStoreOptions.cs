namespace Ordo.Postgres;

/// <summary>Options of the PostgreSQL store.</summary>
public sealed class PostgresStoreOptions
{
    /// <summary>The Npgsql connection string (<c>Host=db;Port=5432;Database=ordo;Username=ordo;Password=...</c>). Required.</summary>
    public string ConnectionString { get; set; } = "";

    /// <summary>
    /// The schema that holds Ordo's tables (created when missing): lowercase letters, digits and underscores. Default:
    /// the first entry of the connection string's <c>Search Path</c>, else <c>ordo</c>. Several Ordo installations can
    /// share one database, each in its own schema; workers and servers of one installation must name the same schema.
    /// </summary>
    public string? Schema { get; set; }

    /// <summary>
    /// The longest an idle worker's wake-up channel (LISTEN/NOTIFY) waits before checking its connections; a lost
    /// connection is opened again and its workers are woken, so a notification missed meanwhile costs at most this.
    /// Default: 5 s.
    /// </summary>
    public TimeSpan ListenCheckInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Creates the schema when it does not exist. When false, a store whose schema is missing refuses to open
    /// (<see cref="Storage.StoreUnavailableException"/>) instead: commands that only read never create one. Default: true.
    /// </summary>
    public bool CreateSchema { get; set; } = true;

    /// <summary>
    /// How many commits of this process are in flight on the server at once. A commit that finds them all taken waits,
    /// and the next one to finish writes every commit waiting by then in one transaction (one round trip and one WAL
    /// flush for all of them). Lower: fewer server processes busy and larger groups; higher: more commits at once.
    /// Default: the number of processors, at least 2.
    /// </summary>
    public int CommitSlots { get; set; } = Math.Max(2, Environment.ProcessorCount);

    /// <summary>
    /// How many commits of this process may wait at the server ahead of the commit they follow: a step that started
    /// while the commit before it was being written (<see cref="Engine.OrdoRuntimeOptions.StartStepsEarly"/>) sends its
    /// own commit at once, and the server writes it as soon as that one ends, instead of after a round trip to this
    /// process. Each holds a server connection, waiting on the job's row lock. With 2 or more, a job's chain keeps up to
    /// two ahead: the next is sent once the commit two before it is written, when the one before it holds the job's row
    /// (sent sooner, it would often reach the row first and be refused). A chain that always has a commit waiting leaves
    /// a cancel from outside little room between two of its commits, hence the default. 0: none; every commit waits
    /// for the one before it. Default: 1.
    /// </summary>
    public int CommitsAhead { get; set; } = 1;

    /// <summary>How often a commit refused by a deadlock or a serialization failure is tried again before it fails. Default: 5.</summary>
    public int DeadlockRetries { get; set; } = 5;

    /// <summary>
    /// How often, at most, a process that commits moves the audit log's pending leaves into the log (in the background,
    /// off the commits' path; every read of the log does it first as well). Default: 1 s.
    /// </summary>
    public TimeSpan AuditSealInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The clock of the store's own waits (reconnecting). Default: the system clock.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;
}
