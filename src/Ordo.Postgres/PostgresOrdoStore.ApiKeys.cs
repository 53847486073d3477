using Npgsql;
using Ordo.Storage;

namespace Ordo.Postgres;

/// <summary>The server's API keys: hashes only.</summary>
public sealed partial class PostgresOrdoStore
{
    private const string ApiKeyColumns = "key_id, tenant, identity, hash, created_at, revoked_at";

    /// <inheritdoc />
    public async ValueTask CreateApiKeyAsync(ApiKeyRecord key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        try
        {
            await WriteAsync(async c =>
            {
                await ExecAsync(c, "INSERT INTO api_keys(key_id, tenant, identity, hash, created_at) VALUES ($1, $2, $3, $4, $5)", cancellationToken,
                    Sql.Text(key.KeyId), Sql.Text(key.Tenant), Sql.Text(key.Identity), Sql.Text(key.Hash), Sql.Long(Ms(key.CreatedAt))).ConfigureAwait(false);
                return 0;
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState == "23505")
        {
            throw new InvalidOperationException($"An API key with id {key.KeyId} or the same hash exists.", e);
        }
    }

    /// <inheritdoc />
    public async ValueTask<ApiKeyRecord?> FindApiKeyAsync(string hash, CancellationToken cancellationToken = default)
        => (await ReadApiKeysAsync($"SELECT {ApiKeyColumns} FROM api_keys WHERE hash = $1 AND revoked_at IS NULL", cancellationToken, Sql.Text(hash)).ConfigureAwait(false)).FirstOrDefault();

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<ApiKeyRecord>> ListApiKeysAsync(string? tenant = null, CancellationToken cancellationToken = default)
        => await ReadApiKeysAsync($"SELECT {ApiKeyColumns} FROM api_keys WHERE ($1::text IS NULL OR tenant = $1) ORDER BY created_at, key_id COLLATE \"C\"", cancellationToken, Sql.Text(tenant)).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask<bool> RevokeApiKeyAsync(string keyId, DateTimeOffset revokedAt, CancellationToken cancellationToken = default)
        => await WriteAsync(async c =>
        {
            await using var cmd = Sql.Command(c, "UPDATE api_keys SET revoked_at = $2 WHERE key_id = $1 AND revoked_at IS NULL", Sql.Text(keyId), Sql.Long(Ms(revokedAt)));
            return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) > 0;
        }, cancellationToken).ConfigureAwait(false);

    private async ValueTask<List<ApiKeyRecord>> ReadApiKeysAsync(string sql, CancellationToken cancellationToken, params NpgsqlParameter[] parameters)
        => await ReadAsync(async c =>
        {
            await using var cmd = Sql.Command(c, sql, parameters);
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var list = new List<ApiKeyRecord>();
            while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                list.Add(new ApiKeyRecord(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), At(r.GetInt64(4)), r.IsDBNull(5) ? null : At(r.GetInt64(5))));
            }

            return list;
        }, cancellationToken).ConfigureAwait(false);
}
