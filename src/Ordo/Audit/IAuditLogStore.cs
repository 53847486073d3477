namespace Ordo.Audit;

/// <summary>
/// The store's part of the audit log: the leaves and the perfect subtrees it appended with the events and definitions
/// they record (in the same transactions), and the checkpoints published over them. Reads only: appending happens
/// inside the store's own writes, with <see cref="AuditLogAppender"/>.
/// </summary>
/// <remarks>Implementations are thread-safe.</remarks>
public interface IAuditLogStore
{
    /// <summary>How many leaves the audit log holds.</summary>
    ValueTask<long> GetAuditLogSizeAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// The hashes of perfect subtrees (level 0: the leaves), in the order asked, as the store keeps them or hashes them
    /// again from its leaves (a store may keep only the larger ones); null for one it has not.
    /// </summary>
    ValueTask<IReadOnlyList<byte[]?>> ReadAuditNodesAsync(IReadOnlyList<MerkleNodeId> ids, CancellationToken cancellationToken = default);

    /// <summary>
    /// Every interior subtree the store keeps (level 1 and up) that lies within the first <paramref name="size"/>
    /// leaves, in the order appending completes them: by the last leaf each covers, then by level. What a full check
    /// compares with the subtrees it hashes again from the leaves (a kept subtree is what proofs read).
    /// </summary>
    IAsyncEnumerable<MerkleNode> ReadStoredAuditNodesAsync(long size, CancellationToken cancellationToken = default);

    /// <summary>The leaves from <paramref name="from"/> (inclusive) to <paramref name="to"/> (exclusive), in order.</summary>
    IAsyncEnumerable<StoredAuditLeaf> ReadAuditLeavesAsync(long from, long to, CancellationToken cancellationToken = default);

    /// <summary>The leaves about one job (its id) or one definition (its content hash), in order (a store may read the whole log for it).</summary>
    IAsyncEnumerable<StoredAuditLeaf> ReadAuditLeavesOfAsync(string subject, CancellationToken cancellationToken = default);

    /// <summary>Records a signed checkpoint as published (<c>GET /v1/audit/checkpoint</c> serves the latest).</summary>
    ValueTask AddAuditCheckpointAsync(AuditCheckpoint checkpoint, CancellationToken cancellationToken = default);

    /// <summary>The checkpoint recorded last, or null when none was.</summary>
    ValueTask<AuditCheckpoint?> GetLatestAuditCheckpointAsync(CancellationToken cancellationToken = default);
}
