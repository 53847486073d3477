using Ordo.Cli;
using Ordo.Telemetry;

using var stop = new CancellationTokenSource();
var interrupts = 0;
Console.CancelKeyPress += (_, e) =>
{
    // The first Ctrl-C stops gracefully; a second one ends the process at once.
    if (Interlocked.Increment(ref interrupts) == 1)
    {
        e.Cancel = true;
        stop.Cancel();
    }
};
using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, ctx =>
{
    ctx.Cancel = true;
    stop.Cancel();
});

// A process started by another one to serve it (ordo bench's workers) stops when that one is gone.
ITimer? parentWatch;
try
{
    parentWatch = Ordo.Cli.Hosting.ParentWatch.Start(stop, TimeProvider.System);
}
catch (ArgumentException e)
{
    await Console.Error.WriteLineAsync($"ordo: {e.Message}");
    return ExitCodes.InvalidInput;
}

using var watching = parentWatch;

// Spans and metrics go out by OTLP only when OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise the SDK is not even loaded.
// Disposed when the command returns: what is still batched is flushed before the process exits.
using var telemetry = OrdoTelemetryExport.OtlpEndpointSet ? OrdoTelemetryExport.StartFromEnvironment() : null;

var terminal = !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("TERM") is not (null or "dumb") && Environment.GetEnvironmentVariable("CI") is null;
return await OrdoCli.RunAsync(args, Console.Out, Console.Error, terminal, stop.Token);
