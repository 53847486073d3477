namespace Ordo.Audit;

/// <summary>The audit log's head as a store holds it: its size and the root hash of its stored subtrees.</summary>
/// <param name="Size">How many leaves it holds.</param>
/// <param name="Root">The root hash (32 bytes).</param>
public sealed record AuditTreeHead(long Size, byte[] Root);

/// <summary>A proof that a leaf is in the tree of a given size.</summary>
/// <param name="Leaf">The leaf, as stored.</param>
/// <param name="TreeSize">The size of the tree it is proved in.</param>
/// <param name="Path">The audit path.</param>
public sealed record AuditInclusion(StoredAuditLeaf Leaf, long TreeSize, IReadOnlyList<byte[]> Path)
{
    /// <summary>Whether the leaf, hashed again from what it records, is in the tree with root <paramref name="root"/>.</summary>
    public bool Verify(ReadOnlySpan<byte> root) => MerkleProofs.VerifyInclusion(Leaf.Index, TreeSize, Leaf.Leaf.Hash(), Path, root);
}

/// <summary>Reads the audit log of a store: its head, and inclusion and consistency proofs built from its stored subtrees.</summary>
public static class AuditLog
{
    /// <summary>The log's size and root.</summary>
    /// <exception cref="InvalidDataException">A stored subtree the root needs is missing.</exception>
    public static async ValueTask<AuditTreeHead> GetHeadAsync(IAuditLogStore store, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        var size = await store.GetAuditLogSizeAsync(cancellationToken).ConfigureAwait(false);
        return new AuditTreeHead(size, await ComputeAsync(store, read => MerkleProofs.Root(size, read), cancellationToken).ConfigureAwait(false));
    }

    /// <summary>The root of the log's first <paramref name="size"/> leaves.</summary>
    public static ValueTask<byte[]> RootAtAsync(IAuditLogStore store, long size, CancellationToken cancellationToken = default)
        => ComputeAsync(store, read => MerkleProofs.Root(size, read), cancellationToken);

    /// <summary>The audit path of leaf <paramref name="index"/> in the tree of the first <paramref name="size"/> leaves.</summary>
    public static ValueTask<IReadOnlyList<byte[]>> ProveInclusionAsync(IAuditLogStore store, long index, long size, CancellationToken cancellationToken = default)
        => ComputeAsync(store, read => MerkleProofs.Inclusion(index, size, read), cancellationToken);

    /// <summary>The proof that the tree of the first <paramref name="second"/> leaves extends that of the first <paramref name="first"/>.</summary>
    public static ValueTask<IReadOnlyList<byte[]>> ProveConsistencyAsync(IAuditLogStore store, long first, long second, CancellationToken cancellationToken = default)
        => ComputeAsync(store, read => MerkleProofs.Consistency(first, second, read), cancellationToken);

    /// <summary>
    /// The proof that a job's head, as the log recorded it last among its first <paramref name="size"/> leaves, is in
    /// the tree of that size; null when none of those leaves is about the job.
    /// </summary>
    public static async ValueTask<AuditInclusion?> ProveJobAsync(IAuditLogStore store, JobId jobId, long size, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        StoredAuditLeaf? last = null;
        await foreach (var leaf in store.ReadAuditLeavesOfAsync(jobId.Value, cancellationToken).ConfigureAwait(false))
        {
            if (leaf.Index < size && leaf.Leaf.Kind == AuditLeafKind.Events) last = leaf;
        }

        if (last is null) return null;
        var path = await ProveInclusionAsync(store, last.Index, size, cancellationToken).ConfigureAwait(false);
        return new AuditInclusion(last, size, path);
    }

    /// <summary>
    /// Runs a proof computation over the stored subtrees: once to learn which subtrees it reads (they do not depend on
    /// the hashes), then, after reading them in one call, for the result.
    /// </summary>
    private static async ValueTask<T> ComputeAsync<T>(IAuditLogStore store, Func<Func<MerkleNodeId, byte[]>, T> compute, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        var wanted = new List<MerkleNodeId>();
        var placeholder = new byte[MerkleHash.Size];
        compute(id =>
        {
            wanted.Add(id);
            return placeholder;
        });
        var ids = wanted.Distinct().ToList();
        var hashes = await store.ReadAuditNodesAsync(ids, cancellationToken).ConfigureAwait(false);
        var byId = new Dictionary<MerkleNodeId, byte[]>(ids.Count);
        for (var i = 0; i < ids.Count; i++)
        {
            byId[ids[i]] = hashes[i] is { Length: MerkleHash.Size } h
                ? h : throw new InvalidDataException($"the audit log has no stored hash for its subtree at level {ids[i].Level}, index {ids[i].Index}: its tables were altered");
        }

        return compute(id => byId[id]);
    }
}
