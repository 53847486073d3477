using Microsoft.Data.Sqlite;
using Ordo.Storage;

namespace Ordo.Sqlite;

/// <summary>
/// The single writer of a store: writes from all threads are queued, and whoever finds no commit in progress
/// becomes the leader and commits everything queued in ONE transaction (each write in its own savepoint, so one
/// failing write does not undo the others). Under concurrency many steps share one commit, and one fsync in full
/// durability; a lone writer pays for one transaction, with no thread hop.
/// </summary>
internal sealed class GroupCommitWriter : IDisposable
{
    private readonly SqliteConnection _connection;
    private readonly int _maxBatch;
    private readonly Lock _gate = new();
    private readonly WriterStatements.Statement _begin;
    private readonly WriterStatements.Statement _commit;
    private readonly WriterStatements.Statement _rollback;
    private readonly WriterStatements.Statement _savepoint;
    private readonly WriterStatements.Statement _release;
    private readonly WriterStatements.Statement _rollbackTo;
    private List<IPendingWrite> _queue = [];
    private bool _leading;

    private readonly Action? _committed;
    private readonly IWriteParticipant? _participant;
    private long _transactions;

    /// <summary>Transactions committed so far (a group of writes counts once).</summary>
    public long Transactions => Interlocked.Read(ref _transactions);

    public GroupCommitWriter(SqliteConnection connection, int maxBatch, Action? committed = null, IWriteParticipant? participant = null)
    {
        _committed = committed;
        _participant = participant;
        _connection = connection;
        _maxBatch = maxBatch;
        _begin = Command("BEGIN IMMEDIATE");
        _commit = Command("COMMIT");
        _rollback = Command("ROLLBACK");
        _savepoint = Command("SAVEPOINT w");
        _release = Command("RELEASE w");
        _rollbackTo = Command("ROLLBACK TO w");
    }

    public SqliteConnection Connection => _connection;

    /// <summary>Commits <paramref name="write"/> (with whatever else is queued) and returns its result.</summary>
    public Task<T> WriteAsync<T>(Func<SqliteConnection, T> write)
    {
        var pending = new PendingWrite<T>(write);
        Enqueue([pending]);
        return pending.Task;
    }

    /// <summary>
    /// Queues <paramref name="writes"/> together, in order, so that they are committed in the same transaction (unless
    /// they exceed the batch size), each in its own savepoint; returns one task per write.
    /// </summary>
    public IReadOnlyList<Task<T>> WriteAll<T>(IReadOnlyList<Func<SqliteConnection, T>> writes)
    {
        var pending = new PendingWrite<T>[writes.Count];
        for (var i = 0; i < writes.Count; i++) pending[i] = new PendingWrite<T>(writes[i]);
        Enqueue(pending);
        return [.. pending.Select(p => p.Task)];
    }

    /// <summary>Queues writes; the caller that finds no commit in progress commits the queue itself.</summary>
    private void Enqueue(ReadOnlySpan<IPendingWrite> writes)
    {
        bool lead;
        lock (_gate)
        {
            foreach (var w in writes) _queue.Add(w);
            lead = !_leading;
            _leading = true;
        }

        if (lead)
        {
            Lead();
        }
    }

    private void Lead()
    {
        while (true)
        {
            List<IPendingWrite> batch;
            lock (_gate)
            {
                if (_queue.Count == 0)
                {
                    _leading = false;
                    return;
                }

                if (_queue.Count <= _maxBatch)
                {
                    batch = _queue;
                    _queue = [];
                }
                else
                {
                    batch = _queue.GetRange(0, _maxBatch);
                    _queue.RemoveRange(0, _maxBatch);
                }
            }

            try
            {
                CommitBatch(batch);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Whatever went wrong, the writer goes on: nothing of this batch was committed, every write of it
                // hears so, and no transaction stays open for the next batch.
                TryRollback();
                _participant?.Abandoned();
                foreach (var w in batch) w.Fail(e);
            }
        }
    }

    /// <summary>
    /// Commits a batch: each write in its own savepoint, so one failing write does not undo the others. When a failure
    /// takes the whole transaction with it (SQLite rolls back by itself on a full disk or an I/O error), or the commit
    /// fails, every write of the batch fails — none of them is reported written.
    /// </summary>
    private void CommitBatch(List<IPendingWrite> batch)
    {
        try
        {
            _begin.ExecuteNonQuery();
        }
        catch (Exception e) when (e is SqliteException or InvalidOperationException)
        {
            foreach (var w in batch) w.Fail(e);
            return;
        }

        var single = batch.Count == 1;
        var failed = new bool[batch.Count];
        for (var i = 0; i < batch.Count; i++)
        {
            if (!single) _savepoint.ExecuteNonQuery();
            var mark = _participant?.Mark() ?? 0;
            try
            {
                batch[i].Execute(_connection);
                if (!single) _release.ExecuteNonQuery();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                failed[i] = true;
                batch[i].Fail(e);
                _participant?.Undo(mark);
                if (single || !InTransaction())
                {
                    // The transaction is gone (or was this write's alone): the writes before this one went with it.
                    TryRollback();
                    _participant?.Abandoned();
                    for (var k = 0; k < batch.Count; k++)
                    {
                        if (!failed[k]) batch[k].Fail(new StoreUnavailableException($"the write was not kept: another write of its transaction failed ({e.Message})", e));
                    }

                    return;
                }

                _rollbackTo.ExecuteNonQuery();
                _release.ExecuteNonQuery();
            }
        }

        try
        {
            // The participant's rows of the whole group (the audit log's leaves) go last, in the same transaction.
            _participant?.BeforeCommit(_connection);
            _commit.ExecuteNonQuery();
        }
        catch (Exception e) when (e is SqliteException or InvalidOperationException or InvalidDataException)
        {
            TryRollback();
            _participant?.Abandoned();
            for (var i = 0; i < batch.Count; i++)
            {
                if (!failed[i]) batch[i].Fail(e);
            }

            return;
        }

        _participant?.Committed();
        Interlocked.Increment(ref _transactions);
        _committed?.Invoke();
        for (var i = 0; i < batch.Count; i++)
        {
            if (!failed[i]) batch[i].Complete();
        }
    }

    /// <summary>Whether a transaction is open on the writer connection.</summary>
    private bool InTransaction() => SQLitePCL.raw.sqlite3_get_autocommit(_connection.Handle) == 0;

    private void TryRollback()
    {
        if (!InTransaction()) return;
        try
        {
            _rollback.ExecuteNonQuery();
        }
        catch (SqliteException)
        {
            // No transaction is open any more (SQLite rolled it back itself).
        }
    }

    private WriterStatements.Statement Command(string sql) => new(_connection, sql, 0);

    public void Dispose()
    {
        foreach (var c in new[] { _begin, _commit, _rollback, _savepoint, _release, _rollbackTo }) c.Dispose();
    }

    private interface IPendingWrite
    {
        void Execute(SqliteConnection connection);

        void Complete();

        void Fail(Exception exception);
    }

    /// <summary>A failure that means the database cannot take writes now (full, I/O error, read-only, damaged), as the store reports it.</summary>
    internal static StoreUnavailableException? Unavailable(Exception e) => e switch
    {
        StoreUnavailableException u => u,
        SqliteException { SqliteErrorCode: 13 } s => new StoreUnavailableException($"the database is full: {s.Message}", s),
        SqliteException { SqliteErrorCode: 10 or 8 or 11 or 26 or 14 } s => new StoreUnavailableException($"the database cannot be written: {s.Message}", s),
        _ => null,
    };

    private sealed class PendingWrite<T>(Func<SqliteConnection, T> write) : IPendingWrite
    {
        private readonly TaskCompletionSource<T> _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T? _result;

        public Task<T> Task => _tcs.Task;

        public void Execute(SqliteConnection connection) => _result = write(connection);

        public void Complete() => _tcs.TrySetResult(_result!);

        public void Fail(Exception exception) => _tcs.TrySetException(Unavailable(exception) ?? exception);
    }
}
