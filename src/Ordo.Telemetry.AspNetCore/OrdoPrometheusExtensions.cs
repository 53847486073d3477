using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Serves Ordo's metrics to Prometheus from an ASP.NET Core host.</summary>
public static class OrdoPrometheusExtensions
{
    /// <summary>Adds the Prometheus exporter to the metrics of <c>AddOrdoTelemetry()</c>; map the endpoint with <see cref="MapOrdoMetrics"/>.</summary>
    public static IOpenTelemetryBuilder AddOrdoPrometheus(this IOpenTelemetryBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.WithMetrics(m => m.AddPrometheusExporter());
    }

    /// <summary>Maps the Prometheus scraping endpoint (default <c>/metrics</c>, text exposition format).</summary>
    public static IEndpointConventionBuilder MapOrdoMetrics(this IEndpointRouteBuilder endpoints, string path = "/metrics")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        return endpoints.MapPrometheusScrapingEndpoint(path);
    }
}
