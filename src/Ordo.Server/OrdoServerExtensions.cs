using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Ordo.Server;
using Ordo.Server.Api;
using Ordo.Server.Auth;
using Ordo.Storage;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Hosts the Ordo HTTP API in an ASP.NET Core app: <c>services.AddOrdo(...).UseSqlite(...); services.AddOrdoServer();</c>
/// then <c>app.MapOrdoApi();</c>. The workers run in the same process (the hosted service of <c>AddOrdo</c>).
/// </summary>
public static class OrdoServerExtensions
{
    /// <summary>
    /// Registers what the API needs: its options, the API key authenticator (keys of <see cref="OrdoServerOptions.Tenants"/>
    /// and of the store), the per-key rate limiter, the OpenAPI document, and CORS when origins are configured.
    /// </summary>
    public static IServiceCollection AddOrdoServer(this IServiceCollection services, Action<OrdoServerOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<OrdoServerOptions>();
        if (configure is not null) options.Configure(configure);
        options.Validate(o =>
        {
            o.Validate();
            return true;
        }).ValidateOnStart();
        services.TryAddSingleton(sp => new ApiKeyAuthenticator(
            new Dictionary<string, Ordo.Configuration.TenantDefinition>(sp.GetRequiredService<IOptions<OrdoServerOptions>>().Value.Tenants, StringComparer.Ordinal),
            sp.GetRequiredService<IOrdoStore>() as IApiKeyStore));
        services.TryAddSingleton<ApiRateLimiter>();
        services.TryAddSingleton<ServerWorkflows>();
        services.AddOpenApi("v1", Ordo.Server.Api.OpenApiDocument.Configure);
        services.AddCors();
        return services;
    }

    /// <summary>
    /// Maps the API: <c>/healthz</c>, <c>/readyz</c>, <c>/openapi/v1.json</c> and the <c>/v1/...</c> endpoints of API.md.
    /// Every <c>/v1</c> call needs <c>Authorization: Bearer KEY</c> and sees only its key's tenant.
    /// </summary>
    public static IEndpointRouteBuilder MapOrdoApi(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        OrdoApiEndpoints.Map(endpoints);
        endpoints.MapOpenApi("/openapi/{documentName}.json");
        return endpoints;
    }

    /// <summary>
    /// Maps the dashboard: <c>GET /</c> and its static files under <c>/dashboard/</c>, served from this assembly with a
    /// Content-Security-Policy that allows no inline script. The pages ask for an API key and call the <c>/v1</c> API with it.
    /// </summary>
    public static IEndpointRouteBuilder MapOrdoDashboard(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        Ordo.Server.Dashboard.DashboardEndpoints.Map(endpoints);
        return endpoints;
    }

    /// <summary>Applies the API's CORS policy: off unless <see cref="OrdoServerOptions.CorsOrigins"/> lists origins.</summary>
    public static IApplicationBuilder UseOrdoCors(this IApplicationBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var origins = app.ApplicationServices.GetRequiredService<IOptions<OrdoServerOptions>>().Value.CorsOrigins;
        if (origins.Count > 0)
        {
            app.UseCors(p => p.WithOrigins([.. origins]).AllowAnyMethod().WithHeaders("Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"));
        }

        return app;
    }
}
