using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Ordo.Hosting;
using Ordo.Telemetry;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers OpenTelemetry for Ordo's spans and metrics in a host.</summary>
public static class OrdoTelemetryServiceCollectionExtensions
{
    /// <summary>
    /// Adds OpenTelemetry tracing and metrics that listen to Ordo's <c>Ordo</c> source and meter, with the service
    /// named <paramref name="serviceName"/> unless <c>OTEL_SERVICE_NAME</c> says otherwise. When
    /// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set, both are exported by OTLP (the <c>OTEL_EXPORTER_OTLP_*</c> variables
    /// apply: protocol, headers, timeout). Returns the OpenTelemetry builder, to add exporters (Prometheus:
    /// <c>AddOrdoPrometheus</c> in <c>Ordo.Telemetry.AspNetCore</c>) or other instrumentation.
    /// </summary>
    public static IOpenTelemetryBuilder AddOrdoTelemetry(this IServiceCollection services, string serviceName = "ordo")
    {
        ArgumentNullException.ThrowIfNull(services);
        var builder = services.AddOpenTelemetry()
            .ConfigureResource(r =>
            {
                if (!OrdoTelemetryExport.ServiceNameSet) r.AddService(serviceName);
            })
            .WithTracing(t => t.AddOrdoInstrumentation())
            .WithMetrics(m => m.AddOrdoInstrumentation());
        if (OrdoTelemetryExport.OtlpEndpointSet)
        {
            builder.UseOtlpExporter();
        }

        return builder;
    }

    /// <summary>Adds OpenTelemetry for Ordo to the host of an Ordo runtime (see <see cref="AddOrdoTelemetry(IServiceCollection, string)"/>).</summary>
    public static IOrdoBuilder AddOrdoTelemetry(this IOrdoBuilder builder, string serviceName = "ordo")
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddOrdoTelemetry(serviceName);
        return builder;
    }
}
