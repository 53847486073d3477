using Ordo.Configuration;
using Ordo.Storage;

namespace Ordo.Server.Auth;

/// <summary>
/// Finds the caller of a key: among the keys of the project's <c>tenants.T.api_keys</c>, then among those of the store
/// (<c>ordo keys create</c>). Only hashes are compared, in constant time; the key itself is never kept or logged.
/// </summary>
/// <remarks>Thread-safe.</remarks>
public sealed class ApiKeyAuthenticator
{
    private readonly IReadOnlyDictionary<string, TenantDefinition> _tenants;
    private readonly IApiKeyStore? _keys;

    /// <summary>Creates an authenticator over the tenants of a project (may be empty) and a key store (may be null).</summary>
    public ApiKeyAuthenticator(IReadOnlyDictionary<string, TenantDefinition> tenants, IApiKeyStore? keys)
    {
        _tenants = tenants ?? throw new ArgumentNullException(nameof(tenants));
        _keys = keys;
    }

    /// <summary>The caller of <paramref name="key"/>, or null when the key is unknown or revoked.</summary>
    public async ValueTask<ApiCaller?> AuthenticateAsync(string key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        var hash = ApiKeys.Hash(key);
        ApiCaller? found = null;
        // Every configured key is compared, so the time taken does not tell which one (or whether one) matched.
        foreach (var tenant in _tenants.Values)
        {
            foreach (var k in tenant.Keys)
            {
                if (ApiKeys.SameHash(k.Hash, hash) && found is null)
                {
                    found = Caller("config:" + k.Hash["sha256:".Length..][..12], tenant.Name, k.Identity);
                }
            }
        }

        if (found is not null || _keys is null) return found;
        var stored = await _keys.FindApiKeyAsync(hash, cancellationToken).ConfigureAwait(false);
        return stored is not null && ApiKeys.SameHash(stored.Hash, hash) ? Caller(stored.KeyId, stored.Tenant, stored.Identity) : null;
    }

    /// <summary>
    /// The roles of an identity in a tenant: those of <c>tenants.T.roles</c>, plus <c>viewer</c>; every role when the
    /// tenant has no <c>roles</c> map or is not configured at all.
    /// </summary>
    public IReadOnlySet<string> RolesOf(string tenant, string identity)
    {
        var roles = new HashSet<string>(StringComparer.Ordinal) { ApiRoles.Viewer };
        if (!_tenants.TryGetValue(tenant, out var t) || !t.HasRoles)
        {
            roles.UnionWith(ApiRoles.All);
            return roles;
        }

        foreach (var (who, held) in t.Roles)
        {
            if (Identities.Same(who, identity)) roles.UnionWith(held);
        }

        return roles;
    }

    private ApiCaller Caller(string keyId, string tenant, string identity) => new(keyId, tenant, identity, RolesOf(tenant, identity));
}
