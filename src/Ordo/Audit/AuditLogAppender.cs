namespace Ordo.Audit;

/// <summary>
/// Appends a transaction's leaves to the audit log for a store: it keeps the log's frontier between transactions (so
/// an append costs O(log n), never a rescan), reloads it when another process appended meanwhile, and hands back the
/// rows to write. A store calls <see cref="Begin"/> under its write lock with the stored size, writes what
/// <see cref="Append"/> returns in the same transaction, then <see cref="Committed"/> once it is durable.
/// </summary>
/// <remarks>Not thread-safe: a store uses it from its writer only.</remarks>
public sealed class AuditLogAppender
{
    private MerkleFrontier? _frontier;

    /// <summary>
    /// The frontier to append to, for a log that holds <paramref name="storedSize"/> leaves. It is the kept one itself
    /// (no copy on the hot path): after appending, call <see cref="Committed"/> or, when the transaction did not commit,
    /// <see cref="Reset"/>.
    /// </summary>
    /// <param name="storedSize">The size as stored, read inside the write transaction.</param>
    /// <param name="read">Reads a stored subtree's hash; called only when the frontier must be reloaded.</param>
    /// <exception cref="InvalidDataException">A subtree of the frontier is not stored.</exception>
    public MerkleFrontier Begin(long storedSize, Func<MerkleNodeId, byte[]?> read)
    {
        if (_frontier is null || _frontier.Size != storedSize)
        {
            // Another process appended (or this is the first transaction, or the last one failed): the frontier is
            // read back, O(log n) hashes.
            _frontier = null;
            _frontier = MerkleFrontier.Load(storedSize, read);
        }

        return _frontier;
    }

    /// <summary>
    /// The frontier kept from the last committed transaction, or null. A store that can tell, when it writes, that
    /// another process appended meanwhile (the next index is taken) may append to it without reading the size first,
    /// and call <see cref="Reset"/> then <see cref="Begin"/> when it was.
    /// </summary>
    public MerkleFrontier? Kept => _frontier;

    /// <summary>Appends <paramref name="leaves"/> to <paramref name="frontier"/>: the leaves with their index and hash, and the interior subtrees they complete.</summary>
    public static AuditAppend Append(MerkleFrontier frontier, IReadOnlyList<AuditLeaf> leaves)
    {
        ArgumentNullException.ThrowIfNull(frontier);
        ArgumentNullException.ThrowIfNull(leaves);
        var stored = new List<StoredAuditLeaf>(leaves.Count);
        var interior = new List<MerkleNode>(leaves.Count + 8);
        var completed = new List<MerkleNode>(8);
        foreach (var leaf in leaves)
        {
            var hash = leaf.Hash();
            stored.Add(new StoredAuditLeaf(frontier.Size, leaf, hash));
            completed.Clear();
            frontier.Append(hash, completed);
            for (var i = 1; i < completed.Count; i++) interior.Add(completed[i]);
        }

        return new AuditAppend(stored, interior);
    }

    /// <summary>The transaction that appended to <paramref name="frontier"/> committed: it is the log's frontier now.</summary>
    public void Committed(MerkleFrontier frontier) => _frontier = frontier;

    /// <summary>Forgets the frontier (the transaction that appended to it did not commit): the next one reads it back.</summary>
    public void Reset() => _frontier = null;
}

/// <summary>What one transaction writes to the audit log.</summary>
/// <param name="Leaves">The leaves, with their index and hash.</param>
/// <param name="Interior">The interior subtrees (level 1 and up) the leaves completed.</param>
public sealed record AuditAppend(IReadOnlyList<StoredAuditLeaf> Leaves, IReadOnlyList<MerkleNode> Interior);
