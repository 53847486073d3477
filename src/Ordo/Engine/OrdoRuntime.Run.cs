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
        // Unbounded: the dispatcher claims only for idle workers; steps of a commit leased to this process (at most
        // ClaimBatchSize per commit) wait here for a worker, their leases renewed like any other.
        var channel = Channel.CreateUnbounded<Dispatched>(new UnboundedChannelOptions { SingleWriter = false, SingleReader = false });
        using var run = new RunContext(channel, workers, request.UntilIdle);
        var workerTasks = Enumerable.Range(0, workers).Select(_ => Task.Run(() => WorkerLoopAsync(channel, run), CancellationToken.None)).ToArray();
        using var keeperStop = new CancellationTokenSource();
        var keeper = Task.Run(() => KeepLeasesAsync(run, keeperStop.Token), CancellationToken.None);
        var stopped = false;
        var local = request.RootJobId is null && Interlocked.CompareExchange(ref _localRun, run, null) is null;
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
            if (local)
            {
                Interlocked.CompareExchange(ref _localRun, null, run);
            }

            channel.Writer.TryComplete();
        }

        var all = Task.WhenAll(workerTasks);
        if (stopped && await Task.WhenAny(all, Task.Delay(_options.ShutdownGrace, _time, CancellationToken.None)).ConfigureAwait(false) != all)
        {
            RuntimeLog.GraceExpired(_logger, _options.ShutdownGrace);
            await run.CancelAsync().ConfigureAwait(false);
        }

        await all.ConfigureAwait(false);
        await run.DetachedAsync().ConfigureAwait(false);
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
            // A job this process is running is known without a read; the store is read when it is not, and on every
            // poll after that (other processes may be running it).
            var cached = _states.Cached(jobId);
            while (true)
            {
                var state = cached ?? await _states.LoadAsync(jobId, cancellationToken).ConfigureAwait(false) ?? throw new OrdoException($"job {jobId} does not exist");
                cached = null;
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

    private async Task DispatchAsync(Channel<Dispatched> channel, RunContext run, RunRequest request, int workers, CancellationToken cancellationToken)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var signal = _workAvailable.Current;

            // Announce interest in freed workers BEFORE counting them, so a worker finishing in between wakes us.
            Interlocked.Exchange(ref run.WantsWorker, 1);
            var free = workers - Volatile.Read(ref run.Busy) - channel.Reader.Count;
            if (free > 0)
            {
                Interlocked.Exchange(ref run.WantsWorker, 0);
            }

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
                    await channel.Writer.WriteAsync(new Dispatched(item, null), cancellationToken).ConfigureAwait(false);
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

    private async Task WorkerLoopAsync(Channel<Dispatched> channel, RunContext run)
    {
        await foreach (var (item, known) in channel.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            if (run.Stopping)
            {
                await ReleaseAsync(item, run).ConfigureAwait(false);
                continue;
            }

            Interlocked.Increment(ref run.Busy);
            try
            {
                await RunChainAsync(item, known, channel, run).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                RuntimeLog.WorkerFailed(_logger, e, item.JobId, item.Step.WorkKey);
                await ReleaseAsync(item, run).ConfigureAwait(false);
            }
            finally
            {
                // Wake the dispatcher only when it waits for a free worker, or to notice that an until-idle run is done.
                if ((Interlocked.Decrement(ref run.Busy) == 0 && run.UntilIdle) || Volatile.Read(ref run.WantsWorker) == 1)
                {
                    _workAvailable.Set();
                }
            }
        }
    }

    private async Task RunChainAsync(WorkItem first, JobState? known, Channel<Dispatched> channel, RunContext run)
    {
        var current = first;
        var chain = 0;
        while (true)
        {
            var (state, next, queued) = await ExecuteItemAsync(current, known, run).ConfigureAwait(false);
            if (!queued)
            {
                // A queued commit keeps its lease renewed until the worker that writes it is done with it.
                run.Untrack(current);
            }

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
            if (++chain >= _options.MaxInlineSteps && channel.Writer.TryWrite(new Dispatched(next, state)))
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

    /// <summary>A work item handed to a worker, with the job's state when the hand-over knows it (saves a read).</summary>
    private readonly record struct Dispatched(WorkItem Item, JobState? Known);

    private sealed class RunContext(Channel<Dispatched> channel, int workers, bool untilIdle) : IDisposable
    {
        public int Busy;
        public int WantsWorker;

        public bool UntilIdle => untilIdle;

        public Channel<Dispatched> Channel => channel;

        /// <summary>Whether a worker is idle with nothing queued for it (a hint: the hand-over falls back to the queue).</summary>
        public bool HasFreeWorker => !Stopping && workers - Volatile.Read(ref Busy) - channel.Reader.Count > 0;
        public long StepsExecuted;

        public volatile bool Stopping;

        public CancellationTokenSource HardStopSource { get; } = new();

        public CancellationToken HardStop => HardStopSource.Token;

        public ConcurrentDictionary<long, WorkItemLease> InFlight { get; } = new();

        public ConcurrentDictionary<string, byte> DeadOwners { get; } = new(StringComparer.Ordinal);

        /// <summary>Commits written in the background for this run's workers; the run ends after them.</summary>
        private readonly ConcurrentDictionary<Task, byte> _detached = new();

        public void Detach(Task task)
        {
            _detached[task] = 0;
            _ = task.ContinueWith(static (t, s) => ((ConcurrentDictionary<Task, byte>)s!).TryRemove(t, out _), _detached, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        public async Task DetachedAsync()
        {
            while (!_detached.IsEmpty)
            {
                await Task.WhenAll(_detached.Keys).ConfigureAwait(false);
            }
        }

        public void Track(WorkItem item) => InFlight[item.Lease.ItemId] = item.Lease;

        public void Untrack(WorkItem item) => InFlight.TryRemove(item.Lease.ItemId, out _);

        public Task CancelAsync() => HardStopSource.CancelAsync();

        public void Dispose() => HardStopSource.Dispose();
    }
}
