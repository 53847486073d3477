namespace Ordo.Storage;

/// <summary>
/// API keys of the server, kept in the store: each maps to a tenant and an identity. Only a hash of a key is stored;
/// the key itself is shown once, when it is created, and never again.
/// </summary>
/// <remarks>Implementations are thread-safe.</remarks>
public interface IApiKeyStore
{
    /// <summary>Stores a new key.</summary>
    /// <exception cref="InvalidOperationException">A key with this id or this hash exists.</exception>
    ValueTask CreateApiKeyAsync(ApiKeyRecord key, CancellationToken cancellationToken = default);

    /// <summary>Finds the key that is not revoked and has this hash (<c>sha256:HEX</c>), or null.</summary>
    ValueTask<ApiKeyRecord?> FindApiKeyAsync(string hash, CancellationToken cancellationToken = default);

    /// <summary>Lists the keys (revoked ones too), of one tenant or of all, oldest first.</summary>
    ValueTask<IReadOnlyList<ApiKeyRecord>> ListApiKeysAsync(string? tenant = null, CancellationToken cancellationToken = default);

    /// <summary>Revokes a key; returns false when no key has this id or it was already revoked.</summary>
    ValueTask<bool> RevokeApiKeyAsync(string keyId, DateTimeOffset revokedAt, CancellationToken cancellationToken = default);
}

/// <summary>A stored API key: never the key itself, only its hash.</summary>
/// <param name="KeyId">The key's public id (shown in lists, used to revoke it).</param>
/// <param name="Tenant">The tenant the key acts for.</param>
/// <param name="Identity">The identity the key acts as (the submitter, the approver).</param>
/// <param name="Hash">The key's hash: <c>sha256:</c> and 64 lowercase hex digits.</param>
/// <param name="CreatedAt">When it was created.</param>
/// <param name="RevokedAt">When it was revoked, or null.</param>
public sealed record ApiKeyRecord(string KeyId, string Tenant, string Identity, string Hash, DateTimeOffset CreatedAt, DateTimeOffset? RevokedAt = null);
