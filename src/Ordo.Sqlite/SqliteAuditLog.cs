using Microsoft.Data.Sqlite;
using Ordo.Audit;

namespace Ordo.Sqlite;

/// <summary>
/// The SQLite store's audit log writer: the group's writes add their leaves (<see cref="Add"/>), and just before the
/// group commits they are appended at once, with the perfect subtrees of 16 leaves or more they complete, in the same transaction. The
/// frontier is kept between groups and appended to without reading the log's size; it is read again only when another
/// process appended meanwhile (the next index is then taken).
/// </summary>
/// <remarks>Not thread-safe: only the writer's leader uses it.</remarks>
internal sealed class SqliteAuditLog(SqliteConnection connection) : IWriteParticipant, IDisposable
{
    private readonly List<AuditLeaf> _pending = [];
    private readonly AuditLogAppender _appender = new();
    private readonly WriterStatements.Statement _size = new(connection, "SELECT coalesce(max(idx) + 1, 0) FROM audit_leaves", 0);
    private readonly WriterStatements.Statement _leafHash = new(connection, "SELECT hash FROM audit_leaves WHERE idx = $1", 1);
    private readonly WriterStatements.Statement _nodeHash = new(connection, "SELECT hash FROM audit_nodes WHERE level = $1 AND idx = $2", 2);
    private readonly WriterStatements.Statement _leafRange = new(connection, "SELECT hash FROM audit_leaves WHERE idx >= $1 AND idx < $2 ORDER BY idx", 2);
    private readonly WriterStatements.Statement _insertLeaf = new(connection,
        "INSERT INTO audit_leaves(idx, kind, subject, first_seq, last_seq, digest, hash) VALUES ($1, $2, $3, $4, $5, $6, $7)", 7);
    private readonly WriterStatements.Statement _insertNode = new(connection, "INSERT INTO audit_nodes(level, idx, hash) VALUES ($1, $2, $3)", 3);
    private MerkleFrontier? _written;

    /// <summary>Collects a leaf of the running write.</summary>
    public void Add(AuditLeaf leaf) => _pending.Add(leaf);

    public int Mark() => _pending.Count;

    public void Undo(int mark) => _pending.RemoveRange(mark, _pending.Count - mark);

    public void BeforeCommit(SqliteConnection connection)
    {
        if (_pending.Count == 0) return;
        // The kept frontier is appended to without reading the log's size: when another process appended since, the
        // first leaf's index is taken (leaves are dense), its insert fails, and the frontier is read back under the
        // write lock and the append done again.
        if (_appender.Kept is not { } kept || !TryWrite(kept))
        {
            _appender.Reset();
            var frontier = _appender.Begin((long)_size.ExecuteScalar()!, Read);
            if (!TryWrite(frontier)) throw new InvalidDataException($"the audit log's leaf {frontier.Size - _pending.Count} is taken though the log holds {frontier.Size - _pending.Count} leaves: audit_leaves was altered");
        }

        _pending.Clear();
    }

    /// <summary>Appends the pending leaves to <paramref name="frontier"/> (in place) and writes them; false when the first one's index was taken.</summary>
    private bool TryWrite(MerkleFrontier frontier)
    {
        // From here the frontier holds what may be rolled back: Abandoned forgets it.
        _written = frontier;
        var append = AuditLogAppender.Append(frontier, _pending);
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
        _pending.Clear();
    }

    public void Abandoned()
    {
        // The frontier was appended to in place: what it holds now was rolled back.
        if (_written is not null) _appender.Reset();
        _written = null;
        _pending.Clear();
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
            while (r.Read()) leaves.Add(new AuditLeaf(AuditLeafKind.Events, r.GetString(0), 1, r.GetInt64(1), (byte[])r.GetValue(2)));
        }

        if (leaves.Count == 0) return;
        using var log = new SqliteAuditLog(connection);
        foreach (var leaf in leaves) log.Add(leaf);
        log.BeforeCommit(connection);
    }

    public void Dispose()
    {
        foreach (var s in new[] { _size, _leafHash, _nodeHash, _leafRange, _insertLeaf, _insertNode }) s.Dispose();
    }
}
