using System.Runtime.CompilerServices;
using Npgsql;
using Ordo.Audit;

namespace Ordo.Postgres;

/// <summary>
/// The audit log on PostgreSQL: each append's leaf is inserted in the append's own batch (its transaction), at the
/// index it takes from the one row of <c>audit_head</c>, which serializes appends across every process; the perfect
/// subtrees above the leaves are hashed the first time a proof needs them, then kept (they never change), so that
/// appending costs one row and a proof reads O(log n) hashes once they are kept.
/// </summary>
public sealed partial class PostgresOrdoStore
{
    private const string InsertLeafSql = """
        WITH head AS (UPDATE audit_head SET size = size + 1 RETURNING size - 1 AS idx)
        INSERT INTO audit_leaves(idx, kind, subject, first_seq, last_seq, digest, hash) SELECT idx, $1, $2, $3, $4, $5, $6 FROM head
        """;

    // A definition is logged once, however many submissions store it at the same time.
    private const string InsertDefinitionLeafSql = """
        WITH head AS (UPDATE audit_head SET size = size + 1 WHERE NOT EXISTS (SELECT 1 FROM audit_leaves WHERE kind = 2 AND subject = $2) RETURNING size - 1 AS idx)
        INSERT INTO audit_leaves(idx, kind, subject, first_seq, last_seq, digest, hash) SELECT idx, $1, $2, $3, $4, $5, $6 FROM head
        """;

    private static void AddLeaf(NpgsqlBatch batch, AuditLeaf leaf) => batch.BatchCommands.Add(Sql.Command(InsertLeafSql, LeafParameters(leaf)));

    private static void AddDefinitionLeaf(NpgsqlBatch batch, AuditLeaf leaf) => batch.BatchCommands.Add(Sql.Command(InsertDefinitionLeafSql, LeafParameters(leaf)));

    private static NpgsqlParameter[] LeafParameters(AuditLeaf leaf)
        => [Sql.Int((int)leaf.Kind), Sql.Text(leaf.Subject), Sql.Long(leaf.FirstSeq), Sql.Long(leaf.LastSeq), Sql.Bytes(leaf.Digest), Sql.Bytes(leaf.Hash())];

    /// <inheritdoc />
    public ValueTask<long> GetAuditLogSizeAsync(CancellationToken cancellationToken = default)
        => ReadAsync(async c =>
        {
            await using var cmd = Sql.Command(c, "SELECT size FROM audit_head");
            return Convert.ToInt64(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
        }, cancellationToken);

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<byte[]?>> ReadAuditNodesAsync(IReadOnlyList<MerkleNodeId> ids, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return ReadAsync<IReadOnlyList<byte[]?>>(async c =>
        {
            long size;
            await using (var cmd = Sql.Command(c, "SELECT size FROM audit_head"))
            {
                size = Convert.ToInt64(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
            }

            var computed = new Dictionary<MerkleNodeId, byte[]?>();
            var result = new byte[]?[ids.Count];
            for (var i = 0; i < ids.Count; i++) result[i] = await NodeAsync(c, ids[i], size, computed, cancellationToken).ConfigureAwait(false);
            var kept = computed.Where(kv => kv.Key.Level > 0 && kv.Value is not null).ToList();
            if (kept.Count > 0)
            {
                await using var keep = Sql.Command(c, "INSERT INTO audit_nodes(level, idx, hash) SELECT * FROM unnest($1::integer[], $2::bigint[], $3::bytea[]) ON CONFLICT DO NOTHING",
                    new NpgsqlParameter { Value = kept.Select(k => k.Key.Level).ToArray() },
                    new NpgsqlParameter { Value = kept.Select(k => k.Key.Index).ToArray() },
                    new NpgsqlParameter { Value = kept.Select(k => k.Value!).ToArray() });
                await keep.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            return result;
        }, cancellationToken);
    }

    /// <summary>A perfect subtree's hash: a leaf's, a kept one, or hashed from its two halves (and kept after).</summary>
    private static async Task<byte[]?> NodeAsync(NpgsqlConnection c, MerkleNodeId id, long size, Dictionary<MerkleNodeId, byte[]?> computed, CancellationToken cancellationToken)
    {
        if (id.FirstLeaf + id.Leaves > size) return null;
        if (computed.TryGetValue(id, out var known)) return known;
        byte[]? hash;
        if (id.Level == 0)
        {
            await using var cmd = Sql.Command(c, "SELECT hash FROM audit_leaves WHERE idx = $1", Sql.Long(id.Index));
            hash = await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as byte[];
            return hash;
        }

        await using (var cmd = Sql.Command(c, "SELECT hash FROM audit_nodes WHERE level = $1 AND idx = $2", Sql.Int(id.Level), Sql.Long(id.Index)))
        {
            hash = await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as byte[];
        }

        if (hash is not null) return hash;
        var left = await NodeAsync(c, new MerkleNodeId(id.Level - 1, id.Index * 2), size, computed, cancellationToken).ConfigureAwait(false);
        var right = await NodeAsync(c, new MerkleNodeId(id.Level - 1, (id.Index * 2) + 1), size, computed, cancellationToken).ConfigureAwait(false);
        hash = left is null || right is null ? null : MerkleHash.Node(left, right);
        computed[id] = hash;
        return hash;
    }

    /// <inheritdoc />
    public IAsyncEnumerable<StoredAuditLeaf> ReadAuditLeavesAsync(long from, long to, CancellationToken cancellationToken = default)
        => ReadLeavesAsync("idx >= $1 AND idx < $2 ORDER BY idx", [Sql.Long(from), Sql.Long(to)], cancellationToken);

    /// <inheritdoc />
    public IAsyncEnumerable<StoredAuditLeaf> ReadAuditLeavesOfAsync(string subject, CancellationToken cancellationToken = default)
        => ReadLeavesAsync("subject = $1 ORDER BY idx", [Sql.Text(subject)], cancellationToken);

    private async IAsyncEnumerable<StoredAuditLeaf> ReadLeavesAsync(string where, NpgsqlParameter[] parameters, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        await using var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = Sql.Command(c, "SELECT idx, kind, subject, first_seq, last_seq, digest, hash FROM audit_leaves WHERE " + where, parameters);
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var kind = (AuditLeafKind)r.GetInt32(1);
            if (kind is not (AuditLeafKind.Events or AuditLeafKind.Definition))
            {
                throw new InvalidDataException($"leaf {r.GetInt64(0)} of the audit log has an unknown kind {(int)kind}");
            }

            yield return new StoredAuditLeaf(r.GetInt64(0), new AuditLeaf(kind, r.GetString(2), r.GetInt64(3), r.GetInt64(4), (byte[])r.GetValue(5)), (byte[])r.GetValue(6));
        }
    }

    /// <inheritdoc />
    public async ValueTask AddAuditCheckpointAsync(AuditCheckpoint checkpoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        await WriteAsync(async c =>
        {
            await using var cmd = Sql.Command(c, "INSERT INTO audit_checkpoints(tree_size, root, time, key_id, public_key, jobs_digest, signature) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                Sql.Long(checkpoint.TreeSize), Sql.Bytes(checkpoint.Root), Sql.Long(checkpoint.Time.ToUnixTimeMilliseconds()), Sql.Text(checkpoint.KeyId),
                Sql.Bytes(checkpoint.PublicKey), Sql.Bytes(checkpoint.JobsDigest), Sql.Bytes(checkpoint.Signature));
            return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public ValueTask<AuditCheckpoint?> GetLatestAuditCheckpointAsync(CancellationToken cancellationToken = default)
        => ReadAsync(async c =>
        {
            await using var cmd = Sql.Command(c, "SELECT tree_size, root, time, key_id, public_key, jobs_digest, signature FROM audit_checkpoints ORDER BY id DESC LIMIT 1");
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (!await r.ReadAsync(cancellationToken).ConfigureAwait(false)) return null;
            return new AuditCheckpoint
            {
                TreeSize = r.GetInt64(0), Root = (byte[])r.GetValue(1), Time = DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(2)), KeyId = r.GetString(3),
                PublicKey = (byte[])r.GetValue(4), JobsDigest = r.IsDBNull(5) ? null : (byte[])r.GetValue(5), Signature = (byte[])r.GetValue(6),
            };
        }, cancellationToken);
}
