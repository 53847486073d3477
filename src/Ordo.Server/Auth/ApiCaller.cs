namespace Ordo.Server.Auth;

/// <summary>Who calls the API: the tenant and identity of the key, and the roles that identity holds.</summary>
/// <param name="KeyId">The key's id (a key from the configuration has <c>config:</c> and the start of its hash).</param>
/// <param name="Tenant">The tenant the key acts for.</param>
/// <param name="Identity">The identity the key acts as.</param>
/// <param name="Roles">The roles held (always including <c>viewer</c>).</param>
public sealed record ApiCaller(string KeyId, string Tenant, string Identity, IReadOnlySet<string> Roles)
{
    /// <summary>Whether the caller holds <paramref name="role"/>.</summary>
    public bool Has(string role) => Roles.Contains(role);
}

/// <summary>The roles of the API.</summary>
public static class ApiRoles
{
    /// <summary>Reads jobs, events and workflows.</summary>
    public const string Viewer = "viewer";
    /// <summary>Submits jobs and cancels its own.</summary>
    public const string Submitter = "submitter";
    /// <summary>Decides approvals.</summary>
    public const string Approver = "approver";
    /// <summary>Sets and clears kill switches, cancels any job of the tenant.</summary>
    public const string Operator = "operator";

    /// <summary>Every role.</summary>
    public static IReadOnlyList<string> All { get; } = [Viewer, Submitter, Approver, Operator];
}
