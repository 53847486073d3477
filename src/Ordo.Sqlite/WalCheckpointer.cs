using Microsoft.Data.Sqlite;

namespace Ordo.Sqlite;

/// <summary>
/// Copies the write-ahead log back into the database file on a thread of its own, so that a commit never pays for
/// a checkpoint (its page writes and fsyncs). It runs after every <see cref="SqliteStoreOptions.CheckpointEvery"/>
/// committed transactions' worth of work, and once the writer goes quiet. Checkpoints are PASSIVE: they never block
/// the writer or readers. The writer connection keeps SQLite's own automatic checkpoint as a backstop, at a much
/// larger WAL size, in case this thread falls behind.
/// </summary>
internal sealed class WalCheckpointer : IDisposable
{
    private readonly string _connectionString;
    private readonly int _every;
    private readonly SemaphoreSlim _due = new(0, 1);
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _thread;
    private long _commits;
    private long _checkpointed;

    public WalCheckpointer(string connectionString, int every)
    {
        _connectionString = connectionString;
        _every = every;
        _thread = new Thread(Run) { IsBackground = true, Name = "ordo-sqlite-checkpoint" };
        _thread.Start();
    }

    /// <summary>Counts one committed transaction; wakes the checkpointer when enough have accumulated.</summary>
    public void Committed()
    {
        var n = Interlocked.Increment(ref _commits);
        if (n - Volatile.Read(ref _checkpointed) >= _every && _due.CurrentCount == 0)
        {
            try
            {
                _due.Release();
            }
            catch (SemaphoreFullException)
            {
                // Already due.
            }
        }
    }

    private void Run()
    {
        using var connection = new SqliteConnection(_connectionString);
        try
        {
            connection.Open();
            using var checkpoint = connection.CreateCommand();
            checkpoint.CommandText = "PRAGMA wal_checkpoint(PASSIVE)";
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    // Due by volume, or one second after the last commit (a quiet writer leaves a short WAL).
                    _due.Wait(TimeSpan.FromSeconds(1), _stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                var commits = Volatile.Read(ref _commits);
                if (commits == Volatile.Read(ref _checkpointed)) continue;
                try
                {
                    checkpoint.ExecuteNonQuery();
                    Volatile.Write(ref _checkpointed, commits);
                }
                catch (SqliteException)
                {
                    // Busy or locked by another process's checkpoint: try again next time.
                }
            }
        }
        catch (SqliteException)
        {
            // The file went away (the store is being disposed); SQLite's own checkpoints still apply.
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _thread.Join();
        _stop.Dispose();
        _due.Dispose();
    }
}
