using System.Text.Json;
using Ordo.Engine;
using Ordo.State;
using Ordo.Storage;
using Ordo.Workflows;

namespace Ordo.Cli.Bench;

/// <summary>
/// A runtime whose workers are running (<c>RunAsync</c> with <c>UntilIdle = false</c>, in the background), and the
/// store it owns. An invocation is what an application does: submit a job, then wait for it to settle.
/// </summary>
internal sealed class BenchHost : IAsyncDisposable
{
    private readonly IOrdoStore _store;
    private readonly CancellationTokenSource _stopRun = new();
    private readonly CancellationTokenSource _failed;
    private readonly Task<RunSummary> _run;

    private BenchHost(IOrdoStore store, OrdoRuntime runtime, int workers, CancellationToken stop)
    {
        _store = store;
        Runtime = runtime;
        Workers = workers;
        _failed = CancellationTokenSource.CreateLinkedTokenSource(stop);
        _run = Task.Run(() => runtime.RunAsync(new RunRequest { UntilIdle = false, Workers = workers }, _stopRun.Token));
        // A worker loop that dies would leave every wait hanging: cancel the waits instead, and report why.
        _run.ContinueWith(_ => _failed.Cancel(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    public OrdoRuntime Runtime { get; }

    public IOrdoStore Store => _store;

    public int Workers { get; }

    /// <summary>Initializes the store and starts the workers. The host owns the store from here on.</summary>
    public static async Task<BenchHost> StartAsync(IOrdoStore store, int workers, CancellationToken stop, OrdoRuntimeOptions? options = null)
    {
        await store.InitializeAsync(stop).ConfigureAwait(false);
        options ??= new OrdoRuntimeOptions();
        options.Workers = workers;
        var runtime = new OrdoRuntime(store, options);
        return new BenchHost(store, runtime, workers, stop);
    }

    /// <summary>Submits a job and waits until it settles.</summary>
    public async Task<JobState> InvokeAsync(WorkflowDefinition workflow, JsonElement input)
    {
        try
        {
            var job = await Runtime.SubmitAsync(workflow, input, null, _failed.Token).ConfigureAwait(false);
            return await Runtime.WaitAsync(job.JobId, _failed.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_run.IsCompleted)
        {
            await _run.ConfigureAwait(false);
            throw new BenchFailedException("the runtime's workers stopped while jobs were waiting");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopRun.CancelAsync().ConfigureAwait(false);
        try
        {
            await _run.ConfigureAwait(false);
        }
        finally
        {
            await Runtime.DisposeAsync().ConfigureAwait(false);
            await _store.DisposeAsync().ConfigureAwait(false);
            _stopRun.Dispose();
            _failed.Dispose();
        }
    }
}
