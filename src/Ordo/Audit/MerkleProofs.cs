namespace Ordo.Audit;

/// <summary>
/// Inclusion and consistency proofs of the audit log, built as RFC 6962 (section 2.1) builds them and checked as RFC
/// 9162 (sections 2.1.3.2 and 2.1.4.2) checks them. Building reads the stored perfect subtrees through a callback:
/// O(log n) ranges, each made of at most O(log n) stored subtrees.
/// </summary>
public static class MerkleProofs
{
    /// <summary>The root of the first <paramref name="size"/> leaves, from the stored subtrees.</summary>
    public static byte[] Root(long size, Func<MerkleNodeId, byte[]> read)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        return size == 0 ? MerkleHash.Empty() : RangeHash(0, size, read);
    }

    /// <summary>The audit path of leaf <paramref name="index"/> in the tree of the first <paramref name="size"/> leaves.</summary>
    public static IReadOnlyList<byte[]> Inclusion(long index, long size, Func<MerkleNodeId, byte[]> read)
    {
        ArgumentNullException.ThrowIfNull(read);
        if (index < 0 || index >= size) throw new ArgumentOutOfRangeException(nameof(index), $"leaf {index} is not in a tree of {size} leaves");
        var path = new List<byte[]>();
        Path(index, 0, size, read, path);
        return path;
    }

    /// <summary>The proof that the tree of <paramref name="second"/> leaves extends the tree of its first <paramref name="first"/>.</summary>
    public static IReadOnlyList<byte[]> Consistency(long first, long second, Func<MerkleNodeId, byte[]> read)
    {
        ArgumentNullException.ThrowIfNull(read);
        if (first < 0 || first > second) throw new ArgumentOutOfRangeException(nameof(first), $"a tree of {second} leaves cannot extend one of {first}");
        var proof = new List<byte[]>();
        if (first == 0 || first == second) return proof;
        SubProof(first, 0, second, true, read, proof);
        return proof;
    }

    /// <summary>Whether <paramref name="path"/> proves that <paramref name="leafHash"/> is leaf <paramref name="index"/> of the tree of <paramref name="size"/> leaves with root <paramref name="root"/>.</summary>
    public static bool VerifyInclusion(long index, long size, ReadOnlySpan<byte> leafHash, IReadOnlyList<byte[]> path, ReadOnlySpan<byte> root)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (index < 0 || index >= size) return false;
        var fn = index;
        var sn = size - 1;
        var r = leafHash.ToArray();
        foreach (var p in path)
        {
            if (sn == 0) return false;
            if ((fn & 1) == 1 || fn == sn)
            {
                r = MerkleHash.Node(p, r);
                while ((fn & 1) == 0 && fn != 0)
                {
                    fn >>= 1;
                    sn >>= 1;
                }
            }
            else
            {
                r = MerkleHash.Node(r, p);
            }

            fn >>= 1;
            sn >>= 1;
        }

        return sn == 0 && r.AsSpan().SequenceEqual(root);
    }

    /// <summary>Whether <paramref name="proof"/> proves that the tree of <paramref name="second"/> leaves with root <paramref name="secondRoot"/> extends the tree of <paramref name="first"/> leaves with root <paramref name="firstRoot"/>.</summary>
    public static bool VerifyConsistency(long first, long second, IReadOnlyList<byte[]> proof, ReadOnlySpan<byte> firstRoot, ReadOnlySpan<byte> secondRoot)
    {
        ArgumentNullException.ThrowIfNull(proof);
        if (first < 0 || first > second) return false;
        if (first == second) return proof.Count == 0 && firstRoot.SequenceEqual(secondRoot);
        if (first == 0) return proof.Count == 0 && firstRoot.SequenceEqual(MerkleHash.Empty());
        if (proof.Count == 0) return false;
        IReadOnlyList<byte[]> path = (first & (first - 1)) == 0 ? [firstRoot.ToArray(), .. proof] : proof;
        var fn = first - 1;
        var sn = second - 1;
        while ((fn & 1) == 1)
        {
            fn >>= 1;
            sn >>= 1;
        }

        var fr = path[0];
        var sr = path[0];
        for (var i = 1; i < path.Count; i++)
        {
            var c = path[i];
            if (sn == 0) return false;
            if ((fn & 1) == 1 || fn == sn)
            {
                fr = MerkleHash.Node(c, fr);
                sr = MerkleHash.Node(c, sr);
                while ((fn & 1) == 0 && fn != 0)
                {
                    fn >>= 1;
                    sn >>= 1;
                }
            }
            else
            {
                sr = MerkleHash.Node(sr, c);
            }

            fn >>= 1;
            sn >>= 1;
        }

        return sn == 0 && fr.AsSpan().SequenceEqual(firstRoot) && sr.AsSpan().SequenceEqual(secondRoot);
    }

    /// <summary>
    /// The hash of leaves [start, start + count). Every range the proofs ask for starts at a multiple of the largest
    /// power of two below its count, so it splits into stored perfect subtrees.
    /// </summary>
    private static byte[] RangeHash(long start, long count, Func<MerkleNodeId, byte[]> read)
    {
        if ((count & (count - 1)) == 0 && start % count == 0)
        {
            var level = System.Numerics.BitOperations.Log2((ulong)count);
            return read(new MerkleNodeId(level, start >> level));
        }

        var k = SplitPoint(count);
        return MerkleHash.Node(RangeHash(start, k, read), RangeHash(start + k, count - k, read));
    }

    /// <summary>The largest power of two smaller than <paramref name="n"/> (n &gt; 1).</summary>
    private static long SplitPoint(long n) => 1L << System.Numerics.BitOperations.Log2((ulong)(n - 1));

    private static void Path(long m, long start, long n, Func<MerkleNodeId, byte[]> read, List<byte[]> path)
    {
        if (n == 1) return;
        var k = SplitPoint(n);
        if (m < k)
        {
            Path(m, start, k, read, path);
            path.Add(RangeHash(start + k, n - k, read));
        }
        else
        {
            Path(m - k, start + k, n - k, read, path);
            path.Add(RangeHash(start, k, read));
        }
    }

    private static void SubProof(long m, long start, long n, bool complete, Func<MerkleNodeId, byte[]> read, List<byte[]> proof)
    {
        if (m == n)
        {
            if (!complete) proof.Add(RangeHash(start, n, read));
            return;
        }

        var k = SplitPoint(n);
        if (m <= k)
        {
            SubProof(m, start, k, complete, read, proof);
            proof.Add(RangeHash(start + k, n - k, read));
        }
        else
        {
            SubProof(m - k, start + k, n - k, false, read, proof);
            proof.Add(RangeHash(start, k, read));
        }
    }
}
