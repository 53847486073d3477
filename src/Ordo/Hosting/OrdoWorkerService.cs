using Microsoft.Extensions.Hosting;
using Ordo.Engine;
using Ordo.Storage;

namespace Ordo.Hosting;

/// <summary>Runs the Ordo workers for the life of the host; a host stop is a graceful stop (leases of unfinished steps are released).</summary>
public sealed class OrdoWorkerService(IOrdoStore store, OrdoRuntime runtime) : BackgroundService
{
    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await store.InitializeAsync(stoppingToken).ConfigureAwait(false);
        await runtime.RunAsync(new RunRequest { UntilIdle = false }, stoppingToken).ConfigureAwait(false);
    }
}
