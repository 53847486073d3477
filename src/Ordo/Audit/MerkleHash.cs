using System.Security.Cryptography;

namespace Ordo.Audit;

/// <summary>
/// The hashes of the store's audit log, as RFC 6962 and RFC 9162 define them for a Merkle tree: a leaf is
/// SHA-256(0x00 || data), an interior node SHA-256(0x01 || left || right), and the empty tree SHA-256 of nothing.
/// </summary>
public static class MerkleHash
{
    /// <summary>The size of every hash, in bytes.</summary>
    public const int Size = 32;

    /// <summary>The root of the empty tree: SHA-256 of the empty string.</summary>
    public static byte[] Empty() => SHA256.HashData(ReadOnlySpan<byte>.Empty);

    /// <summary>The hash of a leaf whose data is <paramref name="data"/>.</summary>
    public static byte[] Leaf(ReadOnlySpan<byte> data)
    {
        var rented = data.Length < 512 ? null : System.Buffers.ArrayPool<byte>.Shared.Rent(data.Length + 1);
        Span<byte> buffer = rented ?? stackalloc byte[512];
        try
        {
            buffer[0] = 0x00;
            data.CopyTo(buffer[1..]);
            return SHA256.HashData(buffer[..(data.Length + 1)]);
        }
        finally
        {
            if (rented is not null) System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>The root of a perfect subtree over <paramref name="leafHashes"/> (a power of two of them, in order).</summary>
    /// <exception cref="ArgumentException">Their number is not a power of two.</exception>
    public static byte[] PerfectRoot(IReadOnlyList<byte[]> leafHashes)
    {
        ArgumentNullException.ThrowIfNull(leafHashes);
        var n = leafHashes.Count;
        if (n == 0 || (n & (n - 1)) != 0) throw new ArgumentException($"a perfect subtree has a power of two of leaves, not {n}", nameof(leafHashes));
        var level = leafHashes.ToArray();
        while (level.Length > 1)
        {
            var up = new byte[level.Length / 2][];
            for (var i = 0; i < up.Length; i++) up[i] = Node(level[2 * i], level[(2 * i) + 1]);
            level = up;
        }

        return level[0];
    }

    /// <summary>The hash of an interior node over its two children.</summary>
    public static byte[] Node(ReadOnlySpan<byte> left, ReadOnlySpan<byte> right)
    {
        Span<byte> buffer = stackalloc byte[1 + (2 * Size)];
        buffer[0] = 0x01;
        left.CopyTo(buffer[1..]);
        right.CopyTo(buffer[(1 + Size)..]);
        return SHA256.HashData(buffer);
    }
}
