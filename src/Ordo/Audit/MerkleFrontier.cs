namespace Ordo.Audit;

/// <summary>
/// The right edge of the audit log (its compact range from 0): the roots of the perfect subtrees that make up the
/// first <see cref="Size"/> leaves, largest first. Appending a leaf costs O(log n) and yields the perfect subtrees it
/// completes, which a store writes beside the leaf; the root is folded from the frontier alone.
/// </summary>
/// <remarks>Not thread-safe: a store appends under its write lock.</remarks>
public sealed class MerkleFrontier
{
    private readonly List<MerkleNode> _nodes;

    /// <summary>An empty log.</summary>
    public MerkleFrontier() : this(0, []) { }

    private MerkleFrontier(long size, List<MerkleNode> nodes)
    {
        Size = size;
        _nodes = nodes;
    }

    /// <summary>How many leaves the log holds.</summary>
    public long Size { get; private set; }

    /// <summary>The perfect subtrees that make up the log, largest (leftmost) first.</summary>
    public IReadOnlyList<MerkleNode> Nodes => _nodes;

    /// <summary>The subtrees a log of <paramref name="size"/> leaves is made of, largest first: one per bit set in the size.</summary>
    public static IReadOnlyList<MerkleNodeId> NodesOf(long size)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        var ids = new List<MerkleNodeId>();
        long start = 0;
        for (var level = 62; level >= 0; level--)
        {
            if ((size & (1L << level)) == 0) continue;
            ids.Add(new MerkleNodeId(level, start >> level));
            start += 1L << level;
        }

        return ids;
    }

    /// <summary>Rebuilds the frontier of a log of <paramref name="size"/> leaves from the stored hashes of <see cref="NodesOf"/>.</summary>
    /// <exception cref="InvalidDataException">A hash is missing or not 32 bytes.</exception>
    public static MerkleFrontier Load(long size, Func<MerkleNodeId, byte[]?> read)
    {
        ArgumentNullException.ThrowIfNull(read);
        var nodes = new List<MerkleNode>();
        foreach (var id in NodesOf(size))
        {
            var hash = read(id);
            if (hash is not { Length: MerkleHash.Size })
            {
                throw new InvalidDataException($"the audit log of {size} leaves has no stored hash for its subtree at level {id.Level}, index {id.Index}");
            }

            nodes.Add(new MerkleNode(id, hash));
        }

        return new MerkleFrontier(size, nodes);
    }

    /// <summary>A copy that can be appended to without changing this one (for a transaction that may roll back).</summary>
    public MerkleFrontier Clone() => new(Size, [.. _nodes]);

    /// <summary>Appends a leaf by its hash; adds the leaf and every perfect subtree it completes to <paramref name="completed"/>.</summary>
    public void Append(byte[] leafHash, List<MerkleNode> completed)
    {
        ArgumentNullException.ThrowIfNull(leafHash);
        ArgumentNullException.ThrowIfNull(completed);
        if (leafHash.Length != MerkleHash.Size) throw new ArgumentException("a leaf hash has 32 bytes", nameof(leafHash));
        var node = new MerkleNode(new MerkleNodeId(0, Size), leafHash);
        completed.Add(node);
        // Two neighbours of the same height are siblings: the right one just completed their parent.
        while (_nodes.Count > 0 && _nodes[^1].Id.Level == node.Id.Level)
        {
            var left = _nodes[^1];
            _nodes.RemoveAt(_nodes.Count - 1);
            node = new MerkleNode(new MerkleNodeId(node.Id.Level + 1, left.Id.Index >> 1), MerkleHash.Node(left.Hash, node.Hash));
            completed.Add(node);
        }

        _nodes.Add(node);
        Size++;
    }

    /// <summary>The root hash of the log (<see cref="MerkleHash.Empty"/> when it has no leaf).</summary>
    public byte[] Root()
    {
        if (_nodes.Count == 0) return MerkleHash.Empty();
        var hash = _nodes[^1].Hash;
        for (var i = _nodes.Count - 2; i >= 0; i--)
        {
            hash = MerkleHash.Node(_nodes[i].Hash, hash);
        }

        return hash;
    }
}
