using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Ordo.Agents;
using Ordo.Configuration;
using Ordo.Telemetry;
using Ordo.Workflows;

namespace Ordo.Server.Hosting;

/// <summary>What <c>ordo serve</c> runs: the API and the workers of one project, on one SQLite file or on PostgreSQL.</summary>
public sealed record ServeSettings
{
    /// <summary>Where to listen. Default: <c>http://127.0.0.1:5080</c>.</summary>
    public string Urls { get; init; } = "http://127.0.0.1:5080";
    /// <summary>The SQLite file (when <see cref="Postgres"/> is not set).</summary>
    public required string DatabasePath { get; init; }
    /// <summary>A PostgreSQL connection string: the store shared with other servers and workers. Default: none (SQLite at <see cref="DatabasePath"/>).</summary>
    public string? Postgres { get; init; }
    /// <summary>The project (its tenants, keys, roles and workflows), or null for none.</summary>
    public ProjectDefinition? Project { get; init; }
    /// <summary>The project's workflows, registered by name and version.</summary>
    public IReadOnlyList<WorkflowDefinition> Workflows { get; init; } = [];
    /// <summary>The code agents and tools of the project's plugins.</summary>
    public CodeRegistry? Code { get; init; }
    /// <summary>Steps run at once; null: the number of cores.</summary>
    public int? Workers { get; init; }
    /// <summary>Requests one API key may make a minute (then 429 with <c>Retry-After</c>). Default: 600.</summary>
    public int RateLimitPerMinute { get; init; } = 600;
    /// <summary>How long a claimed work item stays leased without renewal. Default: 30 s.</summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>The most consecutive pure steps one commit writes (<see cref="Ordo.Engine.OrdoRuntimeOptions.PureStepsPerCommit"/>). Default: 16.</summary>
    public int PureStepsPerCommit { get; init; } = 16;
    /// <summary>How long running steps get to finish when the server stops. Default: 10 s.</summary>
    public TimeSpan ShutdownGrace { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>
    /// Runs last on the builder, before the app is built: an embedder (a test, <c>ordo bench --server</c>) changes logging
    /// or the API's options (<c>Services.Configure&lt;OrdoServerOptions&gt;</c>) without composing the server itself. Default: none.
    /// </summary>
    public Action<WebApplicationBuilder>? Configure { get; init; }
}

/// <summary>Builds the server process of <c>ordo serve</c> through <c>AddOrdo</c>, <c>AddOrdoServer</c> and <c>MapOrdoApi</c>.</summary>
public static class ServerHost
{
    /// <summary>Builds the app (not started): API, dashboard, OpenAPI, health, and the workers as a hosted service.</summary>
    public static WebApplication Build(ServeSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = Directory.GetCurrentDirectory() });
        builder.WebHost.UseUrls(settings.Urls);
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true).AddFilter("Microsoft", LogLevel.Warning).AddFilter("System", LogLevel.Warning);
        // SIGTERM drains: the workers get their grace, then the host waits a little longer for the last commits.
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = settings.ShutdownGrace + TimeSpan.FromSeconds(5));
        if (settings.Code is { } code) builder.Services.AddSingleton(code);
        var ordo = builder.Services.AddOrdo(o =>
        {
            o.Workers = settings.Workers ?? Environment.ProcessorCount;
            o.ShutdownGrace = settings.ShutdownGrace;
            o.LeaseDuration = settings.LeaseDuration;
            o.PureStepsPerCommit = settings.PureStepsPerCommit;
        });
        if (settings.Postgres is { } postgres)
        {
            ordo.UsePostgres(postgres).AddSqliteConnections();
        }
        else
        {
            ordo.UseSqlite(settings.DatabasePath, settings.Project?.Storage?.Durability == "full" ? Ordo.Sqlite.SqliteDurability.Full : Ordo.Sqlite.SqliteDurability.Normal).AddPostgresConnections();
        }
        foreach (var w in settings.Workflows) ordo.AddWorkflow(w);
        builder.Services.AddOrdoServer(o =>
        {
            foreach (var (name, tenant) in settings.Project?.Tenants ?? new Dictionary<string, TenantDefinition>()) o.Tenants[name] = tenant;
            foreach (var w in settings.Workflows) o.Workflows.Add(w);
            o.RateLimitPermits = settings.RateLimitPerMinute;
            o.RateLimitWindow = TimeSpan.FromMinutes(1);
        });
        // Traces and metrics: OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set; Prometheus text at /metrics always.
        builder.Services.AddOrdoTelemetry().AddOrdoPrometheus();
        settings.Configure?.Invoke(builder);
        var app = builder.Build();
        app.UseOrdoCors();
        app.MapOrdoApi();
        app.MapOrdoDashboard();
        app.MapOrdoMetrics();
        return app;
    }
}
