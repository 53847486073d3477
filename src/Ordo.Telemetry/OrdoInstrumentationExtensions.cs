using Ordo.Telemetry;

namespace OpenTelemetry.Trace
{
    /// <summary>Ordo's spans for a tracer provider.</summary>
    public static class OrdoTracerProviderBuilderExtensions
    {
        /// <summary>Listens to Ordo's spans (the <c>Ordo</c> activity source).</summary>
        public static TracerProviderBuilder AddOrdoInstrumentation(this TracerProviderBuilder builder)
        {
            ArgumentNullException.ThrowIfNull(builder);
            return builder.AddSource(OrdoTelemetry.Name);
        }
    }
}

namespace OpenTelemetry.Metrics
{
    /// <summary>Ordo's metrics for a meter provider.</summary>
    public static class OrdoMeterProviderBuilderExtensions
    {
        /// <summary>Listens to Ordo's instruments (the <c>Ordo</c> meter), with histogram buckets in seconds that suit steps and calls.</summary>
        public static MeterProviderBuilder AddOrdoInstrumentation(this MeterProviderBuilder builder)
        {
            ArgumentNullException.ThrowIfNull(builder);
            return builder.AddMeter(OrdoTelemetry.Name);
        }
    }
}
