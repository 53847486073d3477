using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Ordo.Telemetry;

/// <summary>
/// Export for a process without a generic host (the <c>ordo</c> command): OTLP when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>
/// is set, nothing otherwise. Dispose the result before the process exits: that flushes what is still buffered.
/// </summary>
public static class OrdoTelemetryExport
{
    /// <summary>The variable that turns OTLP export on.</summary>
    public const string EndpointVariable = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>Whether <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set (to anything but blanks).</summary>
    public static bool OtlpEndpointSet => !string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(EndpointVariable));

    /// <summary>Whether <c>OTEL_SERVICE_NAME</c> is set: it then names the service, not the default given in code.</summary>
    internal static bool ServiceNameSet => !string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable("OTEL_SERVICE_NAME"));

    /// <summary>
    /// Starts exporting Ordo's spans and metrics by OTLP if <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set (the other
    /// <c>OTEL_EXPORTER_OTLP_*</c> and <c>OTEL_SERVICE_NAME</c> variables apply); returns null, and starts nothing, otherwise.
    /// </summary>
    public static IDisposable? StartFromEnvironment(string serviceName = "ordo")
    {
        if (!OtlpEndpointSet) return null;
        var resource = ResourceBuilder.CreateDefault();
        if (!ServiceNameSet) resource.AddService(serviceName);
        var tracer = Sdk.CreateTracerProviderBuilder()
            .SetResourceBuilder(resource)
            .AddOrdoInstrumentation()
            .AddOtlpExporter()
            .Build();
        var meter = Sdk.CreateMeterProviderBuilder()
            .SetResourceBuilder(resource)
            .AddOrdoInstrumentation()
            .AddOtlpExporter()
            .Build();
        return new Providers(tracer, meter);
    }

    private sealed class Providers(TracerProvider? tracer, MeterProvider? meter) : IDisposable
    {
        public void Dispose()
        {
            // Flushes the spans still batched and takes a last reading of the metrics, then stops both.
            tracer?.Dispose();
            meter?.Dispose();
        }
    }
}
