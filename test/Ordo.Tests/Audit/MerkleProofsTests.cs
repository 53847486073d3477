using Ordo.Audit;

namespace Ordo.Tests.Audit;

/// <summary>
/// The audit log's Merkle tree against the test vectors of RFC 6962 (as the Certificate Transparency implementations
/// publish them: eight leaves, their roots, paths and consistency proofs), and proofs of every leaf and every pair of
/// sizes up to 70 built from the frontier's stored subtrees, against a naive recursive tree.
/// </summary>
public sealed class MerkleProofsTests
{
    private static readonly byte[][] VectorLeaves =
    [
        [], [0x00], [0x10], [0x20, 0x21], [0x30, 0x31], [0x40, 0x41, 0x42, 0x43],
        [0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
        [0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f],
    ];

    private static readonly string[] VectorRoots =
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    [Fact]
    public void EmptyTree_RootIsSha256OfNothing()
        => Assert.Equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Convert.ToHexStringLower(new MerkleFrontier().Root()));

    [Fact]
    public void Frontier_Rfc6962Vectors_GivesTheirRootAtEverySize()
    {
        var (frontier, _) = Build(VectorLeaves.Select(l => MerkleHash.Leaf(l)).ToList());
        var replay = new MerkleFrontier();
        var scratch = new List<MerkleNode>();
        for (var i = 0; i < VectorLeaves.Length; i++)
        {
            replay.Append(MerkleHash.Leaf(VectorLeaves[i]), scratch);
            Assert.Equal(VectorRoots[i], Convert.ToHexStringLower(replay.Root()));
        }

        Assert.Equal(VectorRoots[^1], Convert.ToHexStringLower(frontier.Root()));
    }

    [Fact]
    public void Inclusion_Rfc6962Vectors_MatchPublishedPaths()
    {
        var (_, nodes) = Build(VectorLeaves.Select(l => MerkleHash.Leaf(l)).ToList());
        Assert.Equal(
            ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
            MerkleProofs.Inclusion(0, 8, id => nodes[id]).Select(Convert.ToHexStringLower));
        Assert.Equal(
            ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
            MerkleProofs.Inclusion(5, 8, id => nodes[id]).Select(Convert.ToHexStringLower));
    }

    [Fact]
    public void Consistency_Rfc6962Vectors_MatchPublishedProofs()
    {
        var (_, nodes) = Build(VectorLeaves.Select(l => MerkleHash.Leaf(l)).ToList());
        Assert.Equal(
            ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
            MerkleProofs.Consistency(1, 8, id => nodes[id]).Select(Convert.ToHexStringLower));
        Assert.Equal(
            ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
            MerkleProofs.Consistency(6, 8, id => nodes[id]).Select(Convert.ToHexStringLower));
        Assert.Equal(
            ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"],
            MerkleProofs.Consistency(2, 5, id => nodes[id]).Select(Convert.ToHexStringLower));
        Assert.Empty(MerkleProofs.Consistency(8, 8, id => nodes[id]));
    }

    [Fact]
    public void Inclusion_EveryLeafOfEverySizeUpTo70_VerifiesAndATamperedProofDoesNot()
    {
        var leaves = Enumerable.Range(0, 70).Select(i => MerkleHash.Leaf(BitConverter.GetBytes(i * 7919))).ToList();
        var (_, nodes) = Build(leaves);
        for (var size = 1; size <= leaves.Count; size++)
        {
            var root = NaiveRoot(leaves, 0, size);
            Assert.Equal(root, MerkleProofs.Root(size, id => nodes[id]));
            for (var index = 0; index < size; index++)
            {
                var path = MerkleProofs.Inclusion(index, size, id => nodes[id]);
                Assert.True(MerkleProofs.VerifyInclusion(index, size, leaves[index], path, root), $"leaf {index} of {size}");
                Assert.False(MerkleProofs.VerifyInclusion(index, size, leaves[(index + 1) % leaves.Count], path, root), $"another leaf at {index} of {size}");
                if (path.Count > 0)
                {
                    var bad = path.Select(p => (byte[])p.Clone()).ToList();
                    bad[index % bad.Count][0] ^= 1;
                    Assert.False(MerkleProofs.VerifyInclusion(index, size, leaves[index], bad, root), $"tampered path of leaf {index} of {size}");
                }
            }
        }
    }

    [Fact]
    public void Consistency_EveryPairOfSizesUpTo70_VerifiesAndADifferentHistoryDoesNot()
    {
        var leaves = Enumerable.Range(0, 70).Select(i => MerkleHash.Leaf(BitConverter.GetBytes(i * 104729))).ToList();
        var (_, nodes) = Build(leaves);
        var forked = leaves.ToList();
        for (var second = 1; second <= leaves.Count; second++)
        {
            var secondRoot = NaiveRoot(leaves, 0, second);
            for (var first = 1; first <= second; first++)
            {
                var firstRoot = NaiveRoot(leaves, 0, first);
                var proof = MerkleProofs.Consistency(first, second, id => nodes[id]);
                Assert.True(MerkleProofs.VerifyConsistency(first, second, proof, firstRoot, secondRoot), $"{first} -> {second}");

                // The same first size with one of its leaves rewritten: the proof of the real log does not vouch for it.
                forked[first - 1] = MerkleHash.Leaf([0xff, (byte)first]);
                Assert.False(MerkleProofs.VerifyConsistency(first, second, proof, NaiveRoot(forked, 0, first), secondRoot), $"forked {first} -> {second}");
                forked[first - 1] = leaves[first - 1];
                if (first < second)
                {
                    Assert.False(MerkleProofs.VerifyConsistency(first, second, proof, firstRoot, NaiveRoot(leaves, 0, second - 1)), $"{first} -> wrong root of {second}");
                }
            }
        }
    }

    [Fact]
    public void Frontier_LoadedFromStoredSubtrees_AppendsAsTheOriginal()
    {
        var leaves = Enumerable.Range(0, 45).Select(i => MerkleHash.Leaf([(byte)i])).ToList();
        var (original, nodes) = Build(leaves.Take(37).ToList());
        var loaded = MerkleFrontier.Load(37, id => nodes.GetValueOrDefault(id));
        var scratch = new List<MerkleNode>();
        foreach (var leaf in leaves.Skip(37))
        {
            original.Append(leaf, scratch);
            loaded.Append(leaf, scratch);
        }

        Assert.Equal(NaiveRoot(leaves, 0, 45), loaded.Root());
        Assert.Equal(original.Root(), loaded.Root());
        Assert.Throws<InvalidDataException>(() => MerkleFrontier.Load(37, _ => null));
    }

    [Fact]
    public void Append_CompletesEachPerfectSubtreeOnce()
    {
        var (_, nodes) = Build(Enumerable.Range(0, 64).Select(i => MerkleHash.Leaf([(byte)i])).ToList());

        // 64 leaves and 63 interior nodes of a perfect tree: a store writes about two rows per leaf, never more.
        Assert.Equal(127, nodes.Count);
        Assert.True(nodes.ContainsKey(new MerkleNodeId(6, 0)));
    }

    private static (MerkleFrontier Frontier, Dictionary<MerkleNodeId, byte[]> Nodes) Build(IReadOnlyList<byte[]> leafHashes)
    {
        var frontier = new MerkleFrontier();
        var nodes = new Dictionary<MerkleNodeId, byte[]>();
        var completed = new List<MerkleNode>();
        foreach (var leaf in leafHashes)
        {
            completed.Clear();
            frontier.Append(leaf, completed);
            foreach (var n in completed) Assert.True(nodes.TryAdd(n.Id, n.Hash), $"subtree {n.Id} completed twice");
        }

        return (frontier, nodes);
    }

    /// <summary>MTH of RFC 6962, section 2.1, by recursion over the leaf hashes.</summary>
    private static byte[] NaiveRoot(IReadOnlyList<byte[]> leaves, int start, int count)
    {
        if (count == 1) return leaves[start];
        var k = 1;
        while (k * 2 < count) k *= 2;
        return MerkleHash.Node(NaiveRoot(leaves, start, k), NaiveRoot(leaves, start + k, count - k));
    }
}
