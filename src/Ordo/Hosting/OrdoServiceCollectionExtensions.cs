using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Ordo.Agents;
using Ordo.Engine;
using Ordo.Hosting;
using Ordo.Steps;
using Ordo.Storage;
using Ordo.Tools;
using Ordo.Tools.Mcp;
using Ordo.Workflows;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers Ordo in a host: <c>services.AddOrdo(o =&gt; o.Workers = 4).UseSqlite("ordo.db")</c>.</summary>
public static class OrdoServiceCollectionExtensions
{
    /// <summary>
    /// Adds the Ordo runtime: <see cref="OrdoRuntime"/> (submit, wait, cancel), a hosted worker service that runs steps
    /// until the host stops, and the registries for code agents, code tools and workflows built in C#. Choose the store
    /// with a storage call: <c>UseSqlite(path)</c> (Ordo.Sqlite), or <c>UseInMemoryStore()</c> (Ordo.Testing) for tests.
    /// </summary>
    public static IOrdoBuilder AddOrdo(this IServiceCollection services, Action<OrdoRuntimeOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<OrdoRuntimeOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.Validate(o =>
        {
            o.Validate();
            return true;
        }).ValidateOnStart();

        services.AddOrdoHttpClients();
        services.AddOptions<McpServerPoolOptions>().Validate(o =>
        {
            o.Validate();
            return true;
        });
        // One pool per host: the runtime's mcp tools and whoever lists MCP tools (IMcpToolCatalog) share its sessions;
        // the container stops its servers when the host is disposed.
        services.TryAddSingleton(sp => new McpServerPool(sp.GetRequiredService<IOptions<McpServerPoolOptions>>().Value, sp.GetService<ILoggerFactory>()));
        services.TryAddSingleton<IMcpToolCatalog>(sp => sp.GetRequiredService<McpServerPool>());
        services.TryAddSingleton(new CodeRegistry());
        services.TryAddSingleton(new WorkflowRegistry());
        services.TryAddSingleton<IOrdoStore>(_ => throw new Ordo.OrdoException(
            "Ordo has no store: call UseSqlite(path) (package Ordo.Sqlite) on the builder AddOrdo returns, or UseInMemoryStore() (package Ordo.Testing) in tests"));
        services.TryAddSingleton(sp =>
        {
            var components = new OrdoComponents
            {
                Code = sp.GetRequiredService<CodeRegistry>(),
                Workflows = sp.GetRequiredService<WorkflowRegistry>(),
                Services = sp,
                HttpClients = sp.GetService<System.Net.Http.IHttpClientFactory>(),
                McpServers = sp.GetRequiredService<McpServerPool>(),
            };
            foreach (var f in sp.GetServices<ISqlConnectionFactory>()) components.SqlConnections.Add(f);
            foreach (var e in sp.GetServices<IToolExecutor>()) components.ToolExecutors.Add(e);
            foreach (var h in sp.GetServices<IStepHandler>()) components.StepHandlers.Add(h);
            foreach (var h in sp.GetServices<Ordo.Gateway.IToolCallHandler>()) components.ToolCallHandlers.Add(h);
            return components;
        });
        services.TryAddSingleton(sp => new OrdoRuntime(
            sp.GetRequiredService<IOrdoStore>(),
            sp.GetRequiredService<IOptions<OrdoRuntimeOptions>>().Value,
            sp.GetRequiredService<OrdoComponents>(),
            sp.GetService<ILogger<OrdoRuntime>>()));
        services.AddHostedService<OrdoWorkerService>();
        return new OrdoBuilder(services);
    }

    /// <summary>
    /// Registers the <c>ordo-tools</c> client of <see cref="System.Net.Http.IHttpClientFactory"/>, on which http tools
    /// run (<see cref="AddOrdo"/> calls it). Its connections follow no redirect by themselves (each tool follows them
    /// hop by hop, as its <c>redirects</c> allows), keep no cookies, bound response headers to 64 KiB, and refuse
    /// link-local and cloud metadata addresses when they connect (after name resolution) unless the tool's
    /// <c>allow_addresses</c> lists them; tools with different allowlists never share a connection. The client has no
    /// timeout of its own (each tool has one), buffers at most 4 MiB of an answer read whole, and logs nothing (URLs
    /// may hold secrets). Replacing its primary handler removes these protections.
    /// </summary>
    public static IServiceCollection AddOrdoHttpClients(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddHttpClient(HttpToolConnections.ClientName)
            .ConfigurePrimaryHttpMessageHandler(() => HttpToolConnections.CreatePrimaryHandler(null))
            .ConfigureHttpClient(HttpToolConnections.Configure)
            // The handler renews its pooled connections itself (so DNS changes are seen); rotating it would only drop them.
            .SetHandlerLifetime(Timeout.InfiniteTimeSpan)
            .RemoveAllLoggers();
        return services;
    }

    private sealed class OrdoBuilder(IServiceCollection services) : IOrdoBuilder
    {
        public IServiceCollection Services { get; } = services;
    }
}

/// <summary>Extends an Ordo registration: storage, agents, tools, workflows.</summary>
public static class OrdoBuilderExtensions
{
    /// <summary>
    /// Runs Ordo on a store the caller has opened and keeps owning: the container does not dispose it. The storage
    /// packages' own calls (<c>UseSqlite</c>) are the usual way; this one is for a host that opens the store itself,
    /// as the <c>ordo</c> command line does to report a missing or foreign database before anything runs.
    /// </summary>
    public static IOrdoBuilder UseStore(this IOrdoBuilder builder, IOrdoStore store)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(store);
        builder.Services.Replace(ServiceDescriptor.Singleton(store));
        return builder;
    }

    /// <summary>Registers a code agent under a type name (default: the class's full name), created through the container.</summary>
    public static IOrdoBuilder AddCodeAgent<TAgent>(this IOrdoBuilder builder, string? typeName = null) where TAgent : class, ICodeAgent
    {
        ArgumentNullException.ThrowIfNull(builder);
        Registry(builder).AddAgent(typeName ?? typeof(TAgent).FullName!, sp => sp is null ? Activator.CreateInstance<TAgent>() : ActivatorUtilities.CreateInstance<TAgent>(sp));
        return builder;
    }

    /// <summary>Registers a code tool under a tool or type name, created through the container.</summary>
    public static IOrdoBuilder AddCodeTool<TTool>(this IOrdoBuilder builder, string name) where TTool : class, ICodeTool
    {
        ArgumentNullException.ThrowIfNull(builder);
        Registry(builder).AddTool(name, sp => sp is null ? Activator.CreateInstance<TTool>() : ActivatorUtilities.CreateInstance<TTool>(sp));
        return builder;
    }

    /// <summary>Registers a code tool written as a delegate.</summary>
    public static IOrdoBuilder AddCodeTool(this IOrdoBuilder builder, string name, Func<ToolInvocation, CancellationToken, ValueTask<System.Text.Json.JsonElement>> run)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var tool = new DelegateCodeTool(run);
        Registry(builder).AddTool(name, _ => tool);
        return builder;
    }

    /// <summary>Registers every code agent and code tool of a plugin assembly file.</summary>
    public static IOrdoBuilder AddPlugins(this IOrdoBuilder builder, params string[] paths)
    {
        ArgumentNullException.ThrowIfNull(builder);
        Registry(builder).LoadPlugins(paths);
        return builder;
    }

    /// <summary>Makes a workflow built in C# runnable by this host (jobs pinned to it resume only where it is registered).</summary>
    public static IOrdoBuilder AddWorkflow(this IOrdoBuilder builder, WorkflowDefinition workflow)
    {
        ArgumentNullException.ThrowIfNull(builder);
        Workflows(builder).Register(workflow);
        return builder;
    }

    /// <summary>Adds a step kind.</summary>
    public static IOrdoBuilder AddStepHandler<THandler>(this IOrdoBuilder builder) where THandler : class, IStepHandler
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddSingleton<IStepHandler, THandler>();
        return builder;
    }

    /// <summary>Adds a tool executor for a tool kind.</summary>
    public static IOrdoBuilder AddToolExecutor<TExecutor>(this IOrdoBuilder builder) where TExecutor : class, IToolExecutor
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddSingleton<IToolExecutor, TExecutor>();
        return builder;
    }

    /// <summary>
    /// Adds a handler to the tool gateway's pipeline (after the gateway's own checks, before its rate limit, cache,
    /// recording and resilience), created through the container once for the process. Handlers run in the order they are added.
    /// </summary>
    public static IOrdoBuilder AddToolCallHandler<THandler>(this IOrdoBuilder builder) where THandler : class, Ordo.Gateway.IToolCallHandler
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddSingleton<Ordo.Gateway.IToolCallHandler, THandler>();
        return builder;
    }

    /// <summary>
    /// Sets the limits of the sessions with MCP servers (<see cref="McpServerPoolOptions"/>): how long a server may take to
    /// start, how long it gets to exit, how much of its stderr is kept. The servers themselves are those of each project's
    /// <c>mcp_servers</c>; <see cref="IMcpToolCatalog"/> lists their tools.
    /// </summary>
    public static IOrdoBuilder ConfigureMcpServers(this IOrdoBuilder builder, Action<McpServerPoolOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        builder.Services.Configure(configure);
        return builder;
    }

    /// <summary>Does not start Ordo's workers in this host (a process that only submits and inspects jobs); the host's own hosted services stay.</summary>
    public static IOrdoBuilder WithoutWorkers(this IOrdoBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var ordo = builder.Services.Where(d => d.ServiceType == typeof(IHostedService) && d.ImplementationType == typeof(OrdoWorkerService)).ToList();
        foreach (var d in ordo) builder.Services.Remove(d);
        return builder;
    }

    private static CodeRegistry Registry(IOrdoBuilder builder)
        => (CodeRegistry)builder.Services.First(d => d.ServiceType == typeof(CodeRegistry)).ImplementationInstance!;

    private static WorkflowRegistry Workflows(IOrdoBuilder builder)
        => (WorkflowRegistry)builder.Services.First(d => d.ServiceType == typeof(WorkflowRegistry)).ImplementationInstance!;
}
