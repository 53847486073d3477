using System.Threading.Channels;
using Ordo.Engine.Dispatching;
using Ordo.Engine.Running;
using Ordo.State;
using Ordo.Storage;

namespace Ordo.Engine.Workers;

/// <summary>
/// Runs this process's workers for one <see cref="RunRequest"/>: a <see cref="Dispatcher"/> claims work into a channel,
/// N worker loops take it and run it with the <see cref="StepRunner"/> (a worker goes straight on with the successor its
/// commit leased to it), and a <see cref="LeaseKeeper"/> renews the leases held. A stop is graceful: no new step starts,
/// running ones get <see cref="OrdoRuntimeOptions.ShutdownGrace"/>, then they are interrupted and their leases released.
/// Whatever ends the run, the workers and the lease keeper are stopped and awaited before it returns.
/// </summary>
internal sealed class WorkerPool(EngineContext ctx, StepRunner runner)
{

    public async Task<RunSummary> RunAsync(RunRequest request, CancellationToken cancellationToken)
    {
        var workers = request.Workers ?? ctx.Options.Workers;
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1, nameof(request));
        // Unbounded: the dispatcher claims only for idle workers; steps of a commit leased to this process (at most
        // ClaimBatchSize waiting, see WorkerRun.InlineLimit) wait here for a worker, their leases renewed like any other.
        var channel = Channel.CreateUnbounded<Dispatched>(new UnboundedChannelOptions { SingleWriter = false, SingleReader = false });
        using var run = new WorkerRun(ctx, channel, workers, request.UntilIdle);
        var workerTasks = Enumerable.Range(0, workers).Select(_ => Task.Run(() => WorkerLoopAsync(run), CancellationToken.None)).ToArray();
        using var keeperStop = new CancellationTokenSource();
        var keeper = Task.Run(() => new LeaseKeeper(ctx, run).RunAsync(keeperStop.Token), CancellationToken.None);
        var stopped = false;
        var local = request.RootJobId is null && Interlocked.CompareExchange(ref ctx.LocalRun, run, null) is null;
        Exception? failure = null;
        using var dispatching = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, run.Failed);
        try
        {
            await new Dispatcher(ctx, run, request).RunAsync(dispatching.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (run.Failure is { } failed)
        {
            failure = failed;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            stopped = true;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Not expected (the dispatcher retries store errors, or ends the run with them): stop like a graceful stop, then report it.
            failure = e;
        }
        finally
        {
            run.Stopping = stopped || failure is not null;
            if (local)
            {
                Interlocked.CompareExchange(ref ctx.LocalRun, null, run);
            }

            channel.Writer.TryComplete();
        }

        var all = Task.WhenAll(workerTasks);
        var abandoned = false;
        // Idle workers only have to see the channel closed: with no step running there is nothing to interrupt (a grace of
        // 0 would otherwise report steps that do not exist).
        if (run.Stopping && await Task.WhenAny(all, Task.Delay(ctx.Options.ShutdownGrace, ctx.Time, CancellationToken.None)).ConfigureAwait(false) != all
            && Volatile.Read(ref run.Busy) > 0)
        {
            RuntimeLog.GraceExpired(ctx.Logger, ctx.Options.ShutdownGrace);
            await run.CancelAsync().ConfigureAwait(false);

            // A step that never yields (CPU-bound, or blocked in a call that ignores cancellation) holds its worker's
            // thread: it is abandoned rather than waited for. Its lease is released now, so that another worker runs the
            // step again; whatever it still does can never commit (its lease is gone).
            if (await Task.WhenAny(all, Task.Delay(AbandonAfter, ctx.Time, CancellationToken.None)).ConfigureAwait(false) != all)
            {
                abandoned = true;
                await run.ReleaseAllAsync().ConfigureAwait(false);
            }
        }

        if (!abandoned) await all.ConfigureAwait(false);
        await run.DetachedAsync().ConfigureAwait(false);
        await keeperStop.CancelAsync().ConfigureAwait(false);
        await keeper.ConfigureAwait(false);
        failure ??= run.Failure;
        if (failure is StoreUnavailableException)
        {
            throw new StoreUnavailableException($"the run stopped: {failure.Message.TrimEnd('.', ' ')}; its jobs continue once the store can take writes again (ordo resume)", failure);
        }

        if (failure is not null)
        {
            throw new OrdoException($"the run stopped: {failure.Message}", failure);
        }

        return new RunSummary(Interlocked.Read(ref run.StepsExecuted), stopped);
    }

    /// <summary>How long workers get to return after a hard stop before the steps they are stuck in are abandoned.</summary>
    private static readonly TimeSpan AbandonAfter = TimeSpan.FromSeconds(1);

    private async Task WorkerLoopAsync(WorkerRun run)
    {
        await foreach (var (item, known) in run.Channel.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            if (run.Stopping)
            {
                await run.ReleaseAsync(item).ConfigureAwait(false);
                continue;
            }

            Interlocked.Increment(ref run.Busy);
            try
            {
                await RunChainAsync(item, known, run).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                await run.GiveBackAsync(item, e).ConfigureAwait(false);
            }
            finally
            {
                // Wake the dispatcher only when it waits for a free worker, or to notice that an until-idle run is done.
                if ((Interlocked.Decrement(ref run.Busy) == 0 && run.UntilIdle) || Volatile.Read(ref run.WantsWorker) == 1)
                {
                    ctx.WorkAvailable.Set();
                }
            }
        }
    }

    /// <summary>Runs an item, then the successors its commits lease to this worker, until there is none (or the job has had its turn).</summary>
    private async Task RunChainAsync(Queue.WorkItem first, JobState? known, WorkerRun run)
    {
        var current = first;
        var chain = 0;
        // Set while the current item started before the commit leasing it was written (see EarlyStart).
        Task<Queue.WorkItem?>? pending = null;
        Task<Queue.WorkItem?>? after = null;
        while (true)
        {
            JobState? state;
            Queue.WorkItem? next;
            bool queued;
            Task<Queue.WorkItem?>? nextPending;
            Task<Queue.WorkItem?>? nextAfter;
            int steps;
            try
            {
                // The successor may start early only when this worker will run it: not past the chain's length.
                var mayStartNext = chain + 1 < ctx.Options.MaxInlineSteps;
                (state, next, queued, nextPending, nextAfter, steps) = await runner.ExecuteAsync(current, known, run, pending, mayStartNext, after).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // The item that failed is the chain's current one, not the one it started with (committed long ago):
                // giving back the wrong one would leave this one leased, and renewed, by a worker that no longer runs it.
                if (pending is not null && await pending.ConfigureAwait(false) is { } leased) current = leased;
                else if (pending is not null) return;
                await run.GiveBackAsync(current, e).ConfigureAwait(false);
                return;
            }

            if (!queued && pending is null)
            {
                // A queued commit keeps its lease renewed until the worker that writes it is done with it; an item that
                // started early was let go of by the runner, which alone knows its lease.
                run.Untrack(current);
            }

            if (next is null)
            {
                return;
            }

            if (nextPending is not null)
            {
                // Leased once the commit being written is (tracked by the runner then).
                if (run.Stopping)
                {
                    if (await nextPending.ConfigureAwait(false) is { } leased) await run.ReleaseAsync(leased).ConfigureAwait(false);
                    return;
                }

                chain += steps;
            }
            else
            {
                run.Track(next);
                if (run.Stopping)
                {
                    await run.ReleaseAsync(next).ConfigureAwait(false);
                    return;
                }

                // After a long run of one job, queue its next step behind the others this process holds.
                // Pure steps written together count one each.
                if ((chain += steps) >= ctx.Options.MaxInlineSteps && run.Channel.Writer.TryWrite(new Dispatched(next, state)))
                {
                    return;
                }
            }

            current = next;
            known = state;
            pending = nextPending;
            after = nextAfter;
        }
    }
}
