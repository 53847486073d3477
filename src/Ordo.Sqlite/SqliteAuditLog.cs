using Microsoft.Data.Sqlite;
using Ordo.Audit;

namespace Ordo.Sqlite;

/// <summary>
/// The SQLite store's audit log writer. A group commit's leaves are collected as its writes run (<see cref="Add"/>);
/// an events leaf is then kept in memory once its group committed (the events it records are durable, and the job's
/// row says so in <c>logged_seq</c>), and <em>sealed</em> later, several commits' leaves in one transaction: when the
/// group that seals carries a definition's leaf, when a thousand leaves wait, or when the store asks for it (at most
/// an interval after a commit, before every read of the log's size, and when it closes). Sealing appends the leaves
/// in their order, with the perfect subtrees of 16 leaves or more they complete, and moves each job's
/// <c>sealed_seq</c> on. A leaf that reaches past what the job's row says was sealed covers the events in between
/// too (a process that died before sealing lost its leaves, not its events); a leaf that another process's seal
/// already covered is dropped. A seal that scans also seals every job whose <c>logged_seq</c> is past its
/// <c>sealed_seq</c> (what a process that died left), with the hash of its event at <c>logged_seq</c>. The frontier is
/// kept between groups and appended to without reading the log's size; it is read again only when another process
/// appended meanwhile (the next index is then taken).
/// </summary>
/// <remarks>Not thread-safe: only the writer's leader uses it.</remarks>
internal sealed class SqliteAuditLog(SqliteConnection connection, Action? deferred = null) : IWriteParticipant, IDisposable
{
    /// <summary>How many leaves may wait in memory before the next group seals them.</summary>
    public const int MaxDeferred = 1024;

    private readonly List<AuditLeaf> _current = [];
    private readonly List<AuditLeaf> _deferred = [];
    private readonly AuditLogAppender _appender = new();
    private readonly WriterStatements.Statement _size = new(connection, "SELECT coalesce(max(idx) + 1, 0) FROM audit_leaves", 0);
    private readonly WriterStatements.Statement _leafHash = new(connection, "SELECT hash FROM audit_leaves WHERE idx = $1", 1);
    private readonly WriterStatements.Statement _nodeHash = new(connection, "SELECT hash FROM audit_nodes WHERE level = $1 AND idx = $2", 2);
    private readonly WriterStatements.Statement _leafRange = new(connection, "SELECT hash FROM audit_leaves WHERE idx >= $1 AND idx < $2 ORDER BY idx", 2);
    private readonly WriterStatements.Statement _insertLeaf = new(connection,
        "INSERT INTO audit_leaves(idx, kind, subject, first_seq, last_seq, digest, hash) VALUES ($1, $2, $3, $4, $5, $6, $7)", 7);
    private readonly WriterStatements.Statement _insertNode = new(connection, "INSERT INTO audit_nodes(level, idx, hash) VALUES ($1, $2, $3)", 3);
    // Prepared on first use: an upgrade backfills the log before the jobs' seal columns exist.
    private WriterStatements.Statement? _sealedOf;
    private WriterStatements.Statement? _setSealed;
    private WriterStatements.Statement? _unsealed;
    private WriterStatements.Statement? _storedHash;
    private MerkleFrontier? _written;
    private bool _sealWanted;
    private bool _scanWanted = true;
    private bool _sealing;
    private bool _failed;
    private readonly WriterStatements.Statement _savepoint = new(connection, "SAVEPOINT audit_seal", 0);
    private readonly WriterStatements.Statement _release = new(connection, "RELEASE audit_seal", 0);
    private readonly WriterStatements.Statement _rollbackTo = new(connection, "ROLLBACK TO audit_seal", 0);

    /// <summary>Leaves of committed groups that wait to be sealed (read by the store to decide whether to ask for a seal).</summary>
    public int Deferred => Volatile.Read(ref _deferredCount);

    private int _deferredCount;

    /// <summary>Collects a leaf of the running write.</summary>
    public void Add(AuditLeaf leaf) => _current.Add(leaf);

    /// <summary>
    /// Makes the running group seal every leaf that waits (and, with <paramref name="scan"/>, every job whose row says
    /// events were logged but not sealed). Called from a write, on the leader.
    /// </summary>
    public void RequestSeal(bool scan)
    {
        _sealWanted = true;
        _scanWanted |= scan;
    }

    public int Mark() => _current.Count;

    public void Undo(int mark) => _current.RemoveRange(mark, _current.Count - mark);

    public void BeforeCommit(SqliteConnection connection)
    {
        _sealing = false;
        var due = _sealWanted || (!_failed && (_deferred.Count + _current.Count >= MaxDeferred || _current.Exists(l => l.Kind == AuditLeafKind.Definition)));
        if (!due) return;

        // In a savepoint of its own: a log that cannot be appended to (its tables were altered) fails the seal, not the
        // group's writes. Their events stay durable and their rows logged; ordo audit verify names what was altered.
        _savepoint.ExecuteNonQuery();
        try
        {
            SealNow();
            _release.ExecuteNonQuery();
            _sealing = true;
            _failed = false;
        }
        catch (Exception e) when (e is SqliteException or InvalidDataException)
        {
            _rollbackTo.ExecuteNonQuery();
            _release.ExecuteNonQuery();
            if (_written is not null) _appender.Reset();
            _written = null;
            // Until a seal succeeds, leaves are not kept in memory (they would pile up): the jobs' rows say what waits,
            // and the next seal that is asked for (a reader of the log, the interval, the close) scans for them.
            _failed = true;
            _sealWanted = false;
            _scanWanted = true;
            _deferred.Clear();
            _current.Clear();
        }
    }

    private void SealNow()
    {
        var leaves = Seal();
        if (leaves.Count == 0) return;

        // The kept frontier is appended to without reading the log's size: when another process appended since, the
        // first leaf's index is taken (leaves are dense), its insert fails, and the frontier is read back under the
        // write lock and the append done again.
        if (_appender.Kept is not { } kept || !TryWrite(kept, leaves))
        {
            _appender.Reset();
            var frontier = _appender.Begin((long)_size.ExecuteScalar()!, Read);
            if (!TryWrite(frontier, leaves)) throw new InvalidDataException($"the audit log's leaf {frontier.Size - leaves.Count} is taken though the log holds {frontier.Size - leaves.Count} leaves: audit_leaves was altered");
        }
    }

    /// <summary>
    /// The leaves to append now, in order: those that waited, then the group's own, then (when asked) one for each job
    /// whose row was logged past what was sealed; each job's <c>sealed_seq</c> moved to the last one's.
    /// </summary>
    private List<AuditLeaf> Seal()
    {
        var leaves = new List<AuditLeaf>(_deferred.Count + _current.Count);
        var jobs = new Dictionary<string, (long Key, long Sealed, long Stored)>(StringComparer.Ordinal);
        foreach (var leaf in _deferred.Concat(_current))
        {
            if (leaf.Kind != AuditLeafKind.Events)
            {
                leaves.Add(leaf);
                continue;
            }

            if (!jobs.TryGetValue(leaf.Subject, out var job))
            {
                _sealedOf ??= new(connection, "SELECT job_key, sealed_seq FROM jobs WHERE job_id = $1", 1);
                using var r = _sealedOf.Set(leaf.Subject).ExecuteReader();
                // A value below 0 (written behind the store's back) counts as nothing sealed: no leaf starts before event 1.
                job = r.Read() ? (r.GetInt64(0), Math.Max(0, r.GetInt64(1)), r.GetInt64(1)) : (0L, 0L, 0L);
            }

            // Another process's seal (or a scan, from the stored hashes) covered it already: dropped when the stored
            // chain still has the hash this process computed there, kept (as evidence, after the leaf that covered
            // it) when it does not: events changed between their commit and the seal that read them are named.
            if (job.Key != 0 && leaf.LastSeq <= job.Sealed)
            {
                _storedHash ??= new(connection, "SELECT hash FROM events WHERE job_key = $1 AND seq = $2", 2);
                if (_storedHash.Set(job.Key, leaf.LastSeq).ExecuteScalar() is byte[] stored && stored.AsSpan().SequenceEqual(leaf.Digest)) continue;
                leaves.Add(leaf);
                continue;
            }

            leaves.Add(job.Key != 0 && leaf.FirstSeq != job.Sealed + 1 ? leaf with { FirstSeq = job.Sealed + 1 } : leaf);
            jobs[leaf.Subject] = job with { Sealed = leaf.LastSeq };
        }

        if (_scanWanted)
        {
            _unsealed ??= new(connection, """
                SELECT j.job_key, j.job_id, j.sealed_seq, j.logged_seq, e.hash FROM jobs j JOIN events e ON e.job_key = j.job_key AND e.seq = j.logged_seq
                WHERE j.logged_seq > j.sealed_seq ORDER BY j.job_key
                """, 0);
            using var r = _unsealed.ExecuteReader();
            while (r.Read())
            {
                var (key, id, sealedSeq, logged) = (r.GetInt64(0), r.GetString(1), Math.Max(0, r.GetInt64(2)), r.GetInt64(3));
                if (jobs.TryGetValue(id, out var job)) sealedSeq = job.Sealed;
                if (logged <= sealedSeq) continue;
                leaves.Add(new AuditLeaf(AuditLeafKind.Events, id, sealedSeq + 1, logged, r.GetBlob(4)));
                jobs[id] = (key, logged, job.Key == 0 ? r.GetInt64(2) : job.Stored);
            }
        }

        foreach (var (_, job) in jobs)
        {
            if (job.Key == 0 || job.Sealed <= job.Stored) continue;
            _setSealed ??= new(connection, "UPDATE jobs SET sealed_seq = $2 WHERE job_key = $1 AND sealed_seq < $2", 2);
            _setSealed.Set(job.Key, job.Sealed).ExecuteNonQuery();
        }

        return leaves;
    }

    /// <summary>Appends <paramref name="leaves"/> to <paramref name="frontier"/> (in place) and writes them; false when the first one's index was taken.</summary>
    private bool TryWrite(MerkleFrontier frontier, List<AuditLeaf> leaves)
    {
        // From here the frontier holds what may be rolled back: Abandoned forgets it.
        _written = frontier;
        var append = AuditLogAppender.Append(frontier, leaves);
        for (var i = 0; i < append.Leaves.Count; i++)
        {
            var leaf = append.Leaves[i];
            var l = leaf.Leaf;
            try
            {
                _insertLeaf.Set(leaf.Index, (int)l.Kind, l.Subject, l.FirstSeq, l.LastSeq, l.Digest, leaf.Hash).ExecuteNonQuery();
            }
            catch (SqliteException e) when (i == 0 && e.SqliteExtendedErrorCode is SqlitePrimaryKeyConstraint or SqliteUniqueConstraint)
            {
                // Only this statement failed; the transaction goes on.
                return false;
            }
        }

        foreach (var node in append.Interior)
        {
            if (node.Id.Level >= MinStoredLevel) _insertNode.Set(node.Id.Level, node.Id.Index, node.Hash).ExecuteNonQuery();
        }

        return true;
    }

    /// <summary>SQLITE_CONSTRAINT_PRIMARYKEY and SQLITE_CONSTRAINT_UNIQUE: the row's key is taken.</summary>
    private const int SqlitePrimaryKeyConstraint = 1555;

    private const int SqliteUniqueConstraint = 2067;

    public void Committed()
    {
        if (_written is not null) _appender.Committed(_written);
        _written = null;
        if (_sealing)
        {
            // Everything that waited is in the log now.
            _deferred.Clear();
            _sealWanted = false;
            _scanWanted = false;
        }
        else if (_current.Count > 0)
        {
            var first = _deferred.Count == 0;
            _deferred.AddRange(_current);
            if (first) deferred?.Invoke();
        }

        Volatile.Write(ref _deferredCount, _deferred.Count);
        _current.Clear();
        _sealing = false;
    }

    public void Abandoned()
    {
        // The frontier was appended to in place: what it holds now was rolled back. What waited still waits.
        if (_written is not null) _appender.Reset();
        _written = null;
        _current.Clear();
        _sealing = false;
    }

    /// <summary>
    /// The lowest level of interior subtrees that is stored (16 leaves): a commit then writes its leaf and, one time in
    /// sixteen, a subtree; a subtree below it is hashed again from its at most 8 leaves when it is read.
    /// </summary>
    public const int MinStoredLevel = 4;

    private byte[]? Read(MerkleNodeId id)
    {
        if (id.Level == 0) return _leafHash.Set(id.Index).ExecuteScalar() as byte[];
        if (id.Level >= MinStoredLevel) return _nodeHash.Set(id.Level, id.Index).ExecuteScalar() as byte[];
        var leaves = new List<byte[]>((int)id.Leaves);
        using (var r = _leafRange.Set(id.FirstLeaf, id.FirstLeaf + id.Leaves).ExecuteReader())
        {
            while (r.Read()) leaves.Add(r.GetBlob(0));
        }

        return leaves.Count == id.Leaves ? MerkleHash.PerfectRoot(leaves) : null;
    }

    /// <summary>
    /// Records what a store upgraded to the audit log's schema already held, in the upgrade's transaction: a leaf per
    /// definition and one per job (its events 1..last, ending in its recorded head). The log vouches for them from the
    /// upgrade on; what was changed before it cannot be told.
    /// </summary>
    public static void Backfill(SqliteConnection connection)
    {
        var leaves = new List<AuditLeaf>();
        using (var cmd = connection.CreateCommand())
        {
            cmd.CommandText = "SELECT hash, content FROM definitions ORDER BY created_at, hash";
            using var r = cmd.ExecuteReader();
            while (r.Read()) leaves.Add(AuditLeaf.ForDefinition(r.GetString(0), SqliteContent.Bytes(r, 1)));
        }

        using (var cmd = connection.CreateCommand())
        {
            cmd.CommandText = "SELECT job_id, last_seq, head_hash FROM jobs WHERE last_seq > 0 ORDER BY job_key";
            using var r = cmd.ExecuteReader();
            while (r.Read()) leaves.Add(new AuditLeaf(AuditLeafKind.Events, r.GetString(0), 1, r.GetInt64(1), SqliteContent.Bytes(r, 2)));
        }

        if (leaves.Count == 0) return;
        using var log = new SqliteAuditLog(connection);
        var frontier = log._appender.Begin((long)log._size.ExecuteScalar()!, log.Read);
        if (!log.TryWrite(frontier, leaves)) throw new InvalidDataException("the audit log's first leaf is taken in a store that had no audit log");
    }

    public void Dispose()
    {
        foreach (var s in new[] { _size, _leafHash, _nodeHash, _leafRange, _insertLeaf, _insertNode, _sealedOf, _setSealed, _unsealed, _storedHash, _savepoint, _release, _rollbackTo }) s?.Dispose();
    }
}
