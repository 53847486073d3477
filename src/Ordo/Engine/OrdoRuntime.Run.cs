using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Ordo.Events;
using Ordo.Queue;
using Ordo.State;
using Ordo.Storage;

namespace Ordo.Engine;

public sealed partial class OrdoRuntime
{
    /// <summary>
    /// Runs workers: claims work items, executes their steps and commits the results, until no work is left
    /// (<see cref="RunRequest.UntilIdle"/>) or until cancelled. Cancelling is a graceful stop: no new step starts,
    /// running steps get <see cref="OrdoRuntimeOptions.ShutdownGrace"/> to finish, then they are interrupted and their
    /// leases released, so another worker (or <c>ordo resume</c>) picks them up without waiting for the leases to expire.
    /// </summary>
    public async Task<RunSummary> RunAsync(RunRequest? request = null, CancellationToken cancellationToken = default)
    {
        request ??= new RunRequest();
        var workers = request.Workers ?? _options.Workers;
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1, nameof(request));
        using var run = new RunContext();
        var channel = Channel.CreateBounded<WorkItem>(new BoundedChannelOptions(workers) { SingleWriter = false, SingleReader = false });
        var workerTasks = Enumerable.Range(0, workers).Select(_ => Task.Run(() => WorkerLoopAsync(channel, run), CancellationToken.None)).ToArray();
        using var keeperStop = new CancellationTokenSource();
        var keeper = Task.Run(() => KeepLeasesAsync(run, keeperStop.Token), CancellationToken.None);
        var stopped = false;
        try
        {
            await DispatchAsync(channel, run, request, workers, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            stopped = true;
            run.Stopping = true;
        }
        finally
        {
            channel.Writer.TryComplete();
        }

        var all = Task.WhenAll(workerTasks);
        if (stopped && await Task.WhenAny(all, Task.Delay(_options.ShutdownGrace, _time, CancellationToken.None)).ConfigureAwait(false) != all)
        {
            RuntimeLog.GraceExpired(_logger, _options.ShutdownGrace);
            await run.CancelAsync().ConfigureAwait(false);
        }

        await all.ConfigureAwait(false);
        await keeperStop.CancelAsync().ConfigureAwait(false);
        await keeper.ConfigureAwait(false);
        return new RunSummary(Interlocked.Read(ref run.StepsExecuted), stopped);
    }

    /// <summary>Waits until a job ends or pauses for a human, and returns its state. Work done by other processes is noticed by polling.</summary>
    public async Task<JobState> WaitAsync(JobId jobId, CancellationToken cancellationToken = default)
    {
        var watcher = _watchers.GetOrAdd(jobId, _ => new TaskCompletionSource<JobState>(TaskCreationOptions.RunContinuationsAsynchronously));
        try
        {
            while (true)
            {
                var state = await _states.LoadAsync(jobId, cancellationToken).ConfigureAwait(false) ?? throw new OrdoException($"job {jobId} does not exist");
                if (IsSettled(state))
                {
                    return state;
                }

                await _workAvailable.WaitAsync(watcher.Task, _options.PollInterval * 4, cancellationToken).ConfigureAwait(false);
                if (watcher.Task.IsCompletedSuccessfully)
                {
                    return watcher.Task.Result;
                }
            }
        }
        finally
        {
            _watchers.TryRemove(KeyValuePair.Create(jobId, watcher));
        }
    }

    private static bool IsSettled(JobState state) => state.Status.IsTerminal() || state.Status == JobStatus.WaitingApproval;

    private async Task DispatchAsync(Channel<WorkItem> channel, RunContext run, RunRequest request, int workers, CancellationToken cancellationToken)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var signal = _workAvailable.Current;
            var free = workers - Volatile.Read(ref run.Busy) - channel.Reader.Count;
            if (free > 0)
            {
                var items = await _store.ClaimAsync(new ClaimRequest
                {
                    Owner = Worker,
                    MaxItems = Math.Min(free, _options.ClaimBatchSize),
                    LeaseDuration = _options.LeaseDuration,
                    Now = _time.GetUtcNow(),
                    RootJobId = request.RootJobId,
                    DeadOwners = run.DeadOwners.IsEmpty ? null : run.DeadOwners.Keys.ToList(),
                }, cancellationToken).ConfigureAwait(false);
                foreach (var item in items)
                {
                    run.Track(item);
                    await channel.Writer.WriteAsync(item, cancellationToken).ConfigureAwait(false);
                }

                if (items.Count > 0)
                {
                    continue;
                }
            }

            var wait = _options.PollInterval;
            if (free > 0)
            {
                var now = _time.GetUtcNow();
                var summary = await _store.GetQueueSummaryAsync(request.RootJobId, now, cancellationToken).ConfigureAwait(false);
                var newlyDead = summary.LeaseOwners.Where(o => o != Worker && !run.DeadOwners.ContainsKey(o) && WorkerIdentity.IsDeadOnThisHost(o)).ToList();
                if (newlyDead.Count > 0)
                {
                    foreach (var dead in newlyDead)
                    {
                        RuntimeLog.TakingOver(_logger, dead);
                        run.DeadOwners[dead] = 0;
                    }

                    continue;
                }

                if (request.UntilIdle && summary.IsEmpty && Volatile.Read(ref run.Busy) == 0 && channel.Reader.Count == 0)
                {
                    return;
                }

                if (summary.Ready > 0)
                {
                    continue;
                }

                if (summary.NextVisibleAt is { } next && next - now < wait)
                {
                    wait = next - now;
                }
            }

            await _workAvailable.WaitAsync(signal, wait, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task WorkerLoopAsync(Channel<WorkItem> channel, RunContext run)
    {
        await foreach (var item in channel.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            if (run.Stopping)
            {
                await ReleaseAsync(item, run).ConfigureAwait(false);
                continue;
            }

            Interlocked.Increment(ref run.Busy);
            try
            {
                await RunChainAsync(item, channel, run).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                RuntimeLog.WorkerFailed(_logger, e, item.JobId, item.Step.WorkKey);
                await ReleaseAsync(item, run).ConfigureAwait(false);
            }
            finally
            {
                Interlocked.Decrement(ref run.Busy);
                _workAvailable.Set();
            }
        }
    }

    private async Task RunChainAsync(WorkItem first, Channel<WorkItem> channel, RunContext run)
    {
        var current = first;
        JobState? known = null;
        var chain = 0;
        while (true)
        {
            var (state, next) = await ExecuteItemAsync(current, known, run).ConfigureAwait(false);
            run.Untrack(current);
            if (next is null)
            {
                return;
            }

            run.Track(next);
            if (run.Stopping)
            {
                await ReleaseAsync(next, run).ConfigureAwait(false);
                return;
            }

            // After a long run of one job, queue its next step behind the others this process holds.
            if (++chain >= _options.MaxInlineSteps && channel.Writer.TryWrite(next))
            {
                return;
            }

            current = next;
            known = state;
        }
    }

    private async Task ReleaseAsync(WorkItem item, RunContext run)
    {
        try
        {
            await _store.ReleaseAsync(item.Lease, _time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            RuntimeLog.ReleaseFailed(_logger, e, item.JobId, item.Step.WorkKey);
        }
        finally
        {
            run.Untrack(item);
        }
    }

    private async Task KeepLeasesAsync(RunContext run, CancellationToken cancellationToken)
    {
        var interval = _options.LeaseDuration / 3;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(interval, _time, cancellationToken).ConfigureAwait(false);
                var leases = run.InFlight.Values.ToList();
                if (leases.Count > 0)
                {
                    await _store.RenewLeasesAsync(leases, _time.GetUtcNow() + _options.LeaseDuration, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                RuntimeLog.RenewFailed(_logger, e);
            }
        }
    }

    private sealed class RunContext : IDisposable
    {
        public int Busy;
        public long StepsExecuted;

        public volatile bool Stopping;

        public CancellationTokenSource HardStopSource { get; } = new();

        public CancellationToken HardStop => HardStopSource.Token;

        public ConcurrentDictionary<long, WorkItemLease> InFlight { get; } = new();

        public ConcurrentDictionary<string, byte> DeadOwners { get; } = new(StringComparer.Ordinal);

        public void Track(WorkItem item) => InFlight[item.Lease.ItemId] = item.Lease;

        public void Untrack(WorkItem item) => InFlight.TryRemove(item.Lease.ItemId, out _);

        public Task CancelAsync() => HardStopSource.CancelAsync();

        public void Dispose() => HardStopSource.Dispose();
    }
}
