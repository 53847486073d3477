using Ordo.Agents.Models;
using Ordo.Tools;

namespace Ordo.Configuration;

/// <summary>The project a workflow runs in, from <c>ordo.yaml</c> and the files it names: models, tools, connections, tenants.</summary>
public sealed class ProjectDefinition
{
    /// <summary>A project with nothing configured (no <c>ordo.yaml</c>).</summary>
    public static ProjectDefinition Empty(string baseDirectory) => new() { BaseDirectory = baseDirectory };

    /// <summary>The <c>ordo.yaml</c> file, if there is one.</summary>
    public string? ConfigFile { get; init; }
    /// <summary>The directory relative paths resolve against (the config file's, else the workflow's).</summary>
    public required string BaseDirectory { get; init; }
    /// <summary>Where jobs are stored, if the file says.</summary>
    public StorageSettings? Storage { get; init; }
    /// <summary>The audit settings (<c>audit: { key: FILE }</c>), if the file says.</summary>
    public AuditSettings? Audit { get; init; }
    /// <summary>Model tiers by name.</summary>
    public IReadOnlyDictionary<string, ModelTier> Models { get; init; } = new Dictionary<string, ModelTier>();
    /// <summary>Tier used while a tier's circuit is open (tier → tier).</summary>
    public IReadOnlyDictionary<string, string> ModelFallback { get; init; } = new Dictionary<string, string>();
    /// <summary>Tools by name.</summary>
    public IReadOnlyDictionary<string, ToolDefinition> Tools { get; init; } = new Dictionary<string, ToolDefinition>();
    /// <summary>Database connections for <c>sql</c> tools, by name.</summary>
    public IReadOnlyDictionary<string, ConnectionDefinition> Connections { get; init; } = new Dictionary<string, ConnectionDefinition>();
    /// <summary>MCP servers by name.</summary>
    public IReadOnlyDictionary<string, McpServerDefinition> McpServers { get; init; } = new Dictionary<string, McpServerDefinition>();
    /// <summary>Plugin assemblies (absolute paths).</summary>
    public IReadOnlyList<string> Plugins { get; init; } = [];
    /// <summary>Tenants by name.</summary>
    public IReadOnlyDictionary<string, TenantDefinition> Tenants { get; init; } = new Dictionary<string, TenantDefinition>();
    /// <summary>Folders searched for sub-workflows (absolute paths).</summary>
    public IReadOnlyList<string> WorkflowFolders { get; init; } = [];
    /// <summary>The prompt folder (absolute path).</summary>
    public string? PromptsDirectory { get; init; }
    /// <summary>Policy sets, in the order of <c>policies:</c>.</summary>
    public IReadOnlyList<Policies.PolicySet> Policies { get; init; } = [];
    /// <summary>Faults to inject (<c>faults:</c>, for chaos tests). Default: none.</summary>
    public Faults.FaultSettings Faults { get; init; } = Ordo.Faults.FaultSettings.None;
    /// <summary>Releases by workflow name (<c>releases:</c>): stable version, canary and shadow.</summary>
    public IReadOnlyDictionary<string, Releases.ReleaseDefinition> Releases { get; init; } = new Dictionary<string, Releases.ReleaseDefinition>();

    /// <summary>The policy sets as <c>name@version</c>, comma-separated (stamped on events), or null without policies.</summary>
    public string? PolicyRef => Policies.Count == 0 ? null : string.Join(",", Policies.Select(p => p.Ref));
}

/// <summary>The audit settings of a project.</summary>
public sealed record AuditSettings
{
    /// <summary>
    /// The audit key file (absolute path) that signs checkpoints of the store's audit log; the environment variable
    /// <c>ORDO_AUDIT_KEY</c> wins over it. Keep it outside the database's folder and out of reach of those who can write the database.
    /// </summary>
    public string? Key { get; init; }
}

/// <summary>Where jobs are stored.</summary>
public sealed record StorageSettings
{
    /// <summary>The SQLite file (absolute path).</summary>
    public string? Sqlite { get; init; }
    /// <summary>The PostgreSQL connection string.</summary>
    public string? Postgres { get; init; }
    /// <summary><c>normal</c> (a commit survives a process crash) or <c>full</c> (it survives power loss too).</summary>
    public string Durability { get; init; } = "normal";
}

/// <summary>A database a <c>sql</c> tool connects to.</summary>
public sealed record ConnectionDefinition
{
    /// <summary>The connection name.</summary>
    public required string Name { get; init; }
    /// <summary><c>sqlite</c> or <c>postgres</c>.</summary>
    public required string Provider { get; init; }
    /// <summary>The SQLite file (absolute path) or the PostgreSQL connection string.</summary>
    public required string Target { get; init; }
    /// <summary>SQL run once when a SQLite file does not exist yet (an extension: <c>init: file.sql</c>).</summary>
    public string? InitSql { get; init; }
}

/// <summary>An MCP server.</summary>
public sealed record McpServerDefinition
{
    /// <summary>The server name.</summary>
    public required string Name { get; init; }
    /// <summary>The command that starts it (stdio transport).</summary>
    public IReadOnlyList<string>? Command { get; init; }
    /// <summary>Its URL (HTTP transport).</summary>
    public string? Url { get; init; }
    /// <summary>
    /// Environment variables given to the process (stdio), beside the few every program needs (<c>PATH</c>, <c>HOME</c>, …);
    /// the process does not inherit the rest of Ordo's environment (an extension: <c>env:</c>).
    /// </summary>
    public IReadOnlyDictionary<string, string> Env { get; init; } = new Dictionary<string, string>();
    /// <summary>The directory the process starts in (stdio); null: the project directory given when it is started.</summary>
    public string? WorkingDirectory { get; init; }
}

/// <summary>A tenant: its API keys, who holds which roles, and its quotas.</summary>
public sealed record TenantDefinition
{
    /// <summary>The tenant name.</summary>
    public required string Name { get; init; }
    /// <summary>API keys as <c>sha256:hex</c> of the key.</summary>
    public IReadOnlyList<string> ApiKeys { get; init; } = [];
    /// <summary>The same API keys with the identity each acts as (<c>api-key</c> when the entry names none).</summary>
    public IReadOnlyList<TenantApiKey> Keys { get; init; } = [];
    /// <summary>Identity → roles.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Roles { get; init; } = new Dictionary<string, IReadOnlyList<string>>();
    /// <summary>Whether the configuration has a <c>roles</c> map (without one, every key of the tenant holds every role).</summary>
    public bool HasRoles { get; init; }
    /// <summary>Jobs running at once.</summary>
    public int? ConcurrentJobs { get; init; }
    /// <summary>Submissions per minute.</summary>
    public int? JobsPerMinute { get; init; }
}

/// <summary>An API key of a tenant, from its configuration: the hash of the key and who it acts as.</summary>
/// <param name="Identity">The identity the key acts as.</param>
/// <param name="Hash">The key's hash, <c>sha256:</c> and 64 lowercase hex digits.</param>
public sealed record TenantApiKey(string Identity, string Hash);
