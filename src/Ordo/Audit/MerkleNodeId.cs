namespace Ordo.Audit;

/// <summary>
/// A perfect subtree of the audit log: the 2^<see cref="Level"/> leaves from <c>Index * 2^Level</c>. Level 0 is a leaf.
/// Stores keep the hash of every perfect subtree completed so far, so that any proof reads O(log n) of them.
/// </summary>
/// <param name="Level">The height of the subtree (0 for a leaf).</param>
/// <param name="Index">Its position among the subtrees of that height, from 0.</param>
public readonly record struct MerkleNodeId(int Level, long Index)
{
    /// <summary>The first leaf the subtree covers.</summary>
    public long FirstLeaf => Index << Level;

    /// <summary>How many leaves it covers.</summary>
    public long Leaves => 1L << Level;
}

/// <summary>A perfect subtree and its hash.</summary>
/// <param name="Id">The subtree.</param>
/// <param name="Hash">Its hash.</param>
public sealed record MerkleNode(MerkleNodeId Id, byte[] Hash);
