using Ordo.Configuration;
using Ordo.Workflows;

namespace Ordo.Server;

/// <summary>Options of the Ordo HTTP API.</summary>
public sealed class OrdoServerOptions
{
    /// <summary>The largest request body accepted, in bytes; a larger one is answered 413. Default: 1 MiB.</summary>
    public int MaxRequestBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>Requests one API key may make per <see cref="RateLimitWindow"/>; more are answered 429 with <c>Retry-After</c>. Default: 600.</summary>
    public int RateLimitPermits { get; set; } = 600;

    /// <summary>The window of <see cref="RateLimitPermits"/>. Default: 1 minute.</summary>
    public TimeSpan RateLimitWindow { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How often a live event stream looks for new events. Default: 250 ms.</summary>
    public TimeSpan EventPollInterval { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Origins allowed to call the API from a browser (CORS). Default: none (CORS off).</summary>
    public IList<string> CorsOrigins { get; } = [];

    /// <summary>The tenants (their configured API keys and roles); usually the project's <c>tenants:</c>. Default: none.</summary>
    public IDictionary<string, TenantDefinition> Tenants { get; } = new Dictionary<string, TenantDefinition>(StringComparer.Ordinal);

    /// <summary>
    /// The workflows that <c>POST /v1/jobs</c> submits by name and <c>GET /v1/workflows</c> lists. Default: none, in which
    /// case the workflows registered with <c>AddWorkflow</c> are used.
    /// </summary>
    public IList<WorkflowDefinition> Workflows { get; } = [];

    /// <summary>How often an open event stream or live list checks that its key is still valid (a revoked key's streams end). Default: 5 s.</summary>
    public TimeSpan StreamKeyRecheck { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Checks the limits.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A limit is not positive.</exception>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxRequestBodyBytes, 1, nameof(MaxRequestBodyBytes));
        ArgumentOutOfRangeException.ThrowIfLessThan(RateLimitPermits, 1, nameof(RateLimitPermits));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(RateLimitWindow, TimeSpan.Zero, nameof(RateLimitWindow));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(EventPollInterval, TimeSpan.Zero, nameof(EventPollInterval));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(StreamKeyRecheck, TimeSpan.Zero, nameof(StreamKeyRecheck));
    }
}
