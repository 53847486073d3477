using Microsoft.Data.Sqlite;
using Ordo.Storage;

namespace Ordo.Sqlite;

/// <summary>The server's API keys: hashes only.</summary>
public sealed partial class SqliteOrdoStore : IApiKeyStore
{
    private const string ApiKeyColumns = "key_id, tenant, identity, hash, created_at, revoked_at";

    /// <inheritdoc />
    public async ValueTask CreateApiKeyAsync(ApiKeyRecord key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await Writer.WriteAsync(c =>
            {
                using var cmd = c.CreateCommand();
                cmd.CommandText = "INSERT INTO api_keys(key_id, tenant, identity, hash, created_at) VALUES ($id, $t, $i, $h, $a)";
                cmd.Parameters.AddWithValue("$id", key.KeyId);
                cmd.Parameters.AddWithValue("$t", key.Tenant);
                cmd.Parameters.AddWithValue("$i", key.Identity);
                cmd.Parameters.AddWithValue("$h", key.Hash);
                cmd.Parameters.AddWithValue("$a", Ms(key.CreatedAt));
                return cmd.ExecuteNonQuery();
            }).ConfigureAwait(false);
        }
        catch (SqliteException e) when (e.SqliteErrorCode == 19)
        {
            throw new InvalidOperationException($"An API key with id {key.KeyId} or the same hash exists.", e);
        }
    }

    /// <inheritdoc />
    public async ValueTask<ApiKeyRecord?> FindApiKeyAsync(string hash, CancellationToken cancellationToken = default)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        using var c = OpenReader();
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT {ApiKeyColumns} FROM api_keys WHERE hash = $h AND revoked_at IS NULL";
        cmd.Parameters.AddWithValue("$h", hash);
        using var r = cmd.ExecuteReader();
        return r.Read() ? ReadApiKey(r) : null;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<ApiKeyRecord>> ListApiKeysAsync(string? tenant = null, CancellationToken cancellationToken = default)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        using var c = OpenReader();
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT {ApiKeyColumns} FROM api_keys WHERE ($t IS NULL OR tenant = $t) ORDER BY created_at, key_id";
        cmd.Parameters.AddWithValue("$t", (object?)tenant ?? DBNull.Value);
        using var r = cmd.ExecuteReader();
        var list = new List<ApiKeyRecord>();
        while (r.Read()) list.Add(ReadApiKey(r));
        return list;
    }

    /// <inheritdoc />
    public async ValueTask<bool> RevokeApiKeyAsync(string keyId, DateTimeOffset revokedAt, CancellationToken cancellationToken = default)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        return await Writer.WriteAsync(c =>
        {
            using var cmd = c.CreateCommand();
            cmd.CommandText = "UPDATE api_keys SET revoked_at = $a WHERE key_id = $id AND revoked_at IS NULL";
            cmd.Parameters.AddWithValue("$id", keyId);
            cmd.Parameters.AddWithValue("$a", Ms(revokedAt));
            return cmd.ExecuteNonQuery() > 0;
        }).ConfigureAwait(false);
    }

    private static ApiKeyRecord ReadApiKey(SqliteDataReader r) => new(
        r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(4)),
        r.IsDBNull(5) ? null : DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(5)));
}
