using Ordo.Engine.Workers;
using Ordo.Queue;
using Ordo.Storage;

namespace Ordo.Engine.Dispatching;

/// <summary>
/// Claims work for the idle workers of a run and hands it to them; when there is none, waits — for a commit of this
/// process, a worker freeing up, the next delayed item's time, or at most the poll interval (work written by other
/// processes). It takes over the leases of workers that the store proves dead (see <see cref="IQueueStore.GetWorkerLiveness"/>),
/// and never those of a worker whose liveness it cannot decide: they are waited out until they expire. A store error
/// (busy, I/O) is retried with a growing pause; it never ends the run.
/// </summary>
internal sealed class Dispatcher(EngineContext ctx, WorkerRun run, RunRequest request)
{
    private static readonly TimeSpan FirstPause = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan LongestPause = TimeSpan.FromSeconds(5);
    private TimeSpan _idleWait;

    /// <summary>Runs until the work runs out (<see cref="RunRequest.UntilIdle"/>) or <paramref name="cancellationToken"/> is cancelled.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        // A long-running worker waits for other processes to ring when they add work: its poll is only a safety net. A
        // run until idle keeps looking often, for the end of work other processes hold.
        using var watch = request.UntilIdle ? null : ctx.Store.WatchForWork(ctx.Worker, ctx.WorkAvailable.Set);
        _idleWait = watch is null ? ctx.Options.PollInterval : ctx.Options.IdlePollInterval;
        var pause = FirstPause;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            bool done;
            try
            {
                done = await RoundAsync(cancellationToken).ConfigureAwait(false);
                pause = FirstPause;
            }
            catch (StoreUnavailableException) when (request.UntilIdle)
            {
                // A run until idle reports a store that cannot take writes; a long-running worker waits it out below.
                throw;
            }
            catch (Exception e) when (e is not OutOfMemoryException && !cancellationToken.IsCancellationRequested)
            {
                RuntimeLog.DispatchFailed(ctx.Logger, e, pause);
                await Task.Delay(pause, ctx.Time, cancellationToken).ConfigureAwait(false);
                pause = TimeSpan.FromTicks(Math.Min(LongestPause.Ticks, pause.Ticks * 2));
                continue;
            }

            if (done) return;
        }
    }

    /// <summary>One round: claim for the free workers, or wait for a reason to look again. Returns true when an until-idle run is done.</summary>
    private async Task<bool> RoundAsync(CancellationToken cancellationToken)
    {
        var channel = run.Channel;
        var signal = ctx.WorkAvailable.Current;

        // Announce interest in freed workers BEFORE counting them, so a worker finishing in between wakes us.
        Interlocked.Exchange(ref run.WantsWorker, 1);
        var free = run.Workers - Volatile.Read(ref run.Busy) - channel.Reader.Count;
        if (free > 0)
        {
            Interlocked.Exchange(ref run.WantsWorker, 0);
            var items = await ctx.Store.ClaimAsync(new ClaimRequest
            {
                Owner = ctx.Worker,
                MaxItems = Math.Min(free, ctx.Options.ClaimBatchSize),
                LeaseDuration = ctx.Options.LeaseDuration,
                Now = ctx.Time.GetUtcNow(),
                RootJobId = request.RootJobId,
                DeadOwners = run.DeadOwners.IsEmpty ? null : run.DeadOwners.Keys.ToList(),
            }, cancellationToken).ConfigureAwait(false);
            foreach (var item in items)
            {
                if (item is { Deliveries: 1, AvailableAt: { } since } && Telemetry.OrdoMetrics.QueueWait.Enabled)
                {
                    Telemetry.OrdoMetrics.QueueWait.Record(Math.Max(0, (ctx.Time.GetUtcNow() - since).TotalSeconds));
                }

                run.Track(item);
                await channel.Writer.WriteAsync(new Dispatched(item, null), cancellationToken).ConfigureAwait(false);
            }

            if (items.Count > 0)
            {
                return false;
            }
        }

        var wait = _idleWait;
        if (free > 0)
        {
            var now = ctx.Time.GetUtcNow();
            var summary = await ctx.Store.GetQueueSummaryAsync(request.RootJobId, now, cancellationToken).ConfigureAwait(false);
            if (FindDead(summary))
            {
                return false;
            }

            if (request.UntilIdle && summary.IsEmpty && Volatile.Read(ref run.Busy) == 0 && channel.Reader.Count == 0)
            {
                return true;
            }

            if (summary.Ready > 0)
            {
                return false;
            }

            if (summary.NextVisibleAt is { } next && next - now < wait)
            {
                wait = next - now;
            }
        }

        await ctx.WorkAvailable.WaitAsync(signal, wait, cancellationToken).ConfigureAwait(false);
        return false;
    }

    /// <summary>Marks the lease owners the store proves dead, so the next claim takes their work over; true when it found one.</summary>
    private bool FindDead(QueueSummary summary)
    {
        var found = false;
        foreach (var owner in summary.LeaseOwners)
        {
            if (owner == ctx.Worker || run.DeadOwners.ContainsKey(owner)) continue;
            if (ctx.Store.GetWorkerLiveness(owner) == WorkerLiveness.Dead)
            {
                RuntimeLog.TakingOver(ctx.Logger, ctx.Worker, owner);
                run.DeadOwners[owner] = 0;
                found = true;
            }
        }

        return found;
    }
}
