using System.Collections.Concurrent;
using System.Threading.Channels;
using Ordo.Queue;
using Ordo.State;

namespace Ordo.Engine.Workers;

/// <summary>A work item handed to a worker, with the job's state when the hand-over knows it (saves a read).</summary>
internal readonly record struct Dispatched(WorkItem Item, JobState? Known);

/// <summary>
/// One run of this process's workers (<see cref="OrdoRuntime.RunAsync"/>): the channel the dispatcher fills, the leases
/// the run holds (each with the token that stops its step when the lease is lost), how busy the workers are, and the
/// commits written in the background for it.
/// </summary>
internal sealed class WorkerRun(EngineContext ctx, Channel<Dispatched> channel, int workers, bool untilIdle) : IDisposable
{
    /// <summary>Workers running a step now.</summary>
    public int Busy;

    /// <summary>1 while the dispatcher waits for a worker to free up.</summary>
    public int WantsWorker;

    /// <summary>Step attempts executed.</summary>
    public long StepsExecuted;

    /// <summary>Set on a graceful stop: no new step starts.</summary>
    public volatile bool Stopping;

    private readonly ConcurrentDictionary<Task, byte> _detached = new();

    public bool UntilIdle => untilIdle;

    public int Workers => workers;

    public Channel<Dispatched> Channel => channel;

    /// <summary>Whether a worker is idle with nothing queued for it (a hint: the hand-over falls back to the queue).</summary>
    public bool HasFreeWorker => !Stopping && workers - Volatile.Read(ref Busy) - channel.Reader.Count - Volatile.Read(ref _promised) > 0;

    // Steps this process has decided to lease to itself that are not in the channel yet (being written, or handed over):
    // commits and submissions that decide at once count each other's.
    private int _promised;

    /// <summary>Promises a free worker a submitted job's entry step (true), or finds none free; <see cref="Fulfilled"/> ends the promise.</summary>
    public bool TryPromiseWorker()
    {
        while (true)
        {
            var promised = Volatile.Read(ref _promised);
            if (Stopping || workers - Volatile.Read(ref Busy) - channel.Reader.Count - promised <= 0) return false;
            if (Interlocked.CompareExchange(ref _promised, promised + 1, promised) == promised) return true;
        }
    }

    /// <summary>
    /// Promises a commit the successors it may lease to this process (<see cref="InlineLimit(int, int, bool)"/>, counting
    /// what other commits promised and have not handed over yet); <see cref="Fulfilled"/> ends the promise.
    /// </summary>
    public int PromiseInline(int claimBatch)
    {
        while (true)
        {
            var promised = Volatile.Read(ref _promised);
            var n = InlineLimit(claimBatch, channel.Reader.Count + promised, Stopping);
            if (Interlocked.CompareExchange(ref _promised, promised + n, promised) == promised) return n;
        }
    }

    /// <summary>Ends a promise of <paramref name="count"/> steps: they are handed over (the channel counts them now), or were never leased.</summary>
    public void Fulfilled(int count)
    {
        if (count > 0) Interlocked.Add(ref _promised, -count);
    }

    /// <summary>
    /// How many successors a commit may lease to this process: one for the committing worker to go on with, and more
    /// only while fewer than <paramref name="claimBatch"/> leased steps wait for its workers. A busy process leaves the
    /// rest in the queue, for any process's idle workers, instead of holding them leased; none when the run is stopping.
    /// </summary>
    /// <summary>The rule of <see cref="PromiseInline"/>, given how many leased steps wait and whether the run is stopping.</summary>
    internal static int InlineLimit(int claimBatch, int waiting, bool stopping) => stopping ? 0 : Math.Max(1, claimBatch - waiting);

    private readonly CancellationTokenSource _failed = new();
    private Exception? _failure;

    /// <summary>What ended the run early: the store could not take writes in a run until idle.</summary>
    public Exception? Failure => Volatile.Read(ref _failure);

    /// <summary>Cancelled when the run must end because of <see cref="Failure"/>.</summary>
    public CancellationToken Failed => _failed.Token;

    /// <summary>Ends the run because of <paramref name="failure"/> (the first one is kept); it stops like a graceful stop.</summary>
    public void Fail(Exception failure)
    {
        if (Interlocked.CompareExchange(ref _failure, failure, null) is null) _failed.Cancel();
    }

    /// <summary>Cancelled when running steps must stop at once (the stop's grace ran out).</summary>
    public CancellationTokenSource HardStopSource { get; } = new();

    public CancellationToken HardStop => HardStopSource.Token;

    /// <summary>The leases this run holds, by item id.</summary>
    public ConcurrentDictionary<long, HeldLease> InFlight { get; } = new();

    /// <summary>Workers found dead whose leases this run may take over before they expire.</summary>
    public ConcurrentDictionary<string, byte> DeadOwners { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// Starts holding an item's lease (renewed by the lease keeper until it is let go). A successor that continues in
    /// its predecessor's row has the same item id and the next token: it replaces the predecessor's lease.
    /// </summary>
    public void Track(WorkItem item)
    {
        var lease = item.Lease;
        InFlight.AddOrUpdate(lease.ItemId, _ => new HeldLease(lease), (_, old) => old.Lease.Token == lease.Token ? old : new HeldLease(lease));
    }

    /// <summary>Stops holding an item's lease (not the lease of a successor that took over its row since).</summary>
    public void Untrack(WorkItem item)
    {
        if (InFlight.TryGetValue(item.Lease.ItemId, out var held) && held.Lease.Token == item.Lease.Token)
        {
            InFlight.TryRemove(KeyValuePair.Create(item.Lease.ItemId, held));
        }
    }

    /// <summary>Marks (or unmarks) an item's lease as being committed now (see <see cref="HeldLease.Committing"/>).</summary>
    public void Committing(WorkItem item, bool committing)
    {
        if (InFlight.TryGetValue(item.Lease.ItemId, out var held) && held.Lease.Token == item.Lease.Token) held.Committing = committing;
    }

    /// <summary>The token cancelled when this item's lease is lost (never cancelled for an item the run does not hold).</summary>
    public CancellationToken LostToken(WorkItem item)
        => InFlight.TryGetValue(item.Lease.ItemId, out var held) && held.Lease.Token == item.Lease.Token ? held.Lost : CancellationToken.None;

    /// <summary>A commit written in the background for this run's workers; the run ends after it.</summary>
    public void Detach(Task task)
    {
        _detached[task] = 0;
        _ = task.ContinueWith(static (t, s) => ((ConcurrentDictionary<Task, byte>)s!).TryRemove(t, out _), _detached, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>Waits for the commits written in the background.</summary>
    public async Task DetachedAsync()
    {
        while (!_detached.IsEmpty)
        {
            await Task.WhenAll(_detached.Keys).ConfigureAwait(false);
        }
    }

    public Task CancelAsync() => HardStopSource.CancelAsync();

    /// <summary>Gives a leased item back to the queue (available at once, or after <paramref name="delay"/>) and stops holding it.</summary>
    public async Task ReleaseAsync(WorkItem item, TimeSpan delay = default)
    {
        try
        {
            await ctx.Store.ReleaseAsync(item.Lease, ctx.Time.GetUtcNow() + delay, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            RuntimeLog.ReleaseFailed(ctx.Logger, e, item.JobId, item.Step.WorkKey);
        }
        finally
        {
            Untrack(item);
        }
    }

    /// <summary>
    /// Lets go of every lease the run still holds (its steps are being abandoned): each is marked lost, so that nothing
    /// its step still does can commit, and released, so that another worker can run the step at once.
    /// </summary>
    public async Task ReleaseAllAsync()
    {
        foreach (var held in InFlight.Values.ToList())
        {
            held.Lose();
            try
            {
                await ctx.Store.ReleaseAsync(held.Lease, ctx.Time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                RuntimeLog.AbandonedReleaseFailed(ctx.Logger, e, held.Lease.ItemId);
            }

            InFlight.TryRemove(KeyValuePair.Create(held.Lease.ItemId, held));
        }
    }

    /// <summary>Gives a work item leased to this process to its idle workers, or back to the queue when the run is closing.</summary>
    public async Task HandOverAsync(WorkItem item, JobState? state)
    {
        Track(item);
        if (!channel.Writer.TryWrite(new Dispatched(item, state)))
        {
            await ReleaseAsync(item).ConfigureAwait(false);
            ctx.WorkAvailable.Set();
        }
    }

    private readonly ConcurrentDictionary<(JobId Job, string WorkKey), (int Count, Exception Last)> _givenBack = new();

    /// <summary>
    /// How many times this run gave a step back because running or committing it failed unexpectedly, and the last
    /// error: a step that fails that way every time is failed after <see cref="MaxGiveBacks"/> rather than retried forever.
    /// </summary>
    public (int Count, Exception? Last) GivenBack(WorkItem item)
        => _givenBack.TryGetValue((item.JobId, item.Step.WorkKey), out var g) ? g : (0, null);

    /// <summary>The most times one step is given back for an unexpected failure before it fails as <c>step_crashed</c>.</summary>
    public const int MaxGiveBacks = 5;

    /// <summary>How long an item whose run or commit failed unexpectedly waits before it is run again.</summary>
    public static readonly TimeSpan RetryAfterFailure = TimeSpan.FromSeconds(1);

    /// <summary>
    /// An item could not be run or committed for an unexpected reason: logged, and handed back to the queue after a
    /// pause (what failed would likely fail again at once). A store that cannot take writes ends a run until idle.
    /// </summary>
    public async Task GiveBackAsync(WorkItem item, Exception e)
    {
        RuntimeLog.WorkerFailed(ctx.Logger, e, item.JobId, item.Step.WorkKey);
        if (e is not Storage.StoreUnavailableException and not OperationCanceledException)
        {
            _givenBack.AddOrUpdate((item.JobId, item.Step.WorkKey), _ => (1, e), (_, was) => (was.Count + 1, e));
        }

        await ReleaseAsync(item, RetryAfterFailure).ConfigureAwait(false);
        if (e is Storage.StoreUnavailableException && UntilIdle) Fail(e);
    }

    public void Dispose()
    {
        HardStopSource.Dispose();
        _failed.Dispose();
    }
}

/// <summary>
/// A lease the run holds: when it expires unless renewed, and the token that stops its step once it is lost. (Its token
/// source is never disposed: steps may still be linking to it when the lease is let go; it holds no timer.)
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA1001", Justification = "See the summary: the source has no timer and steps may link to it after the lease is let go.")]
internal sealed class HeldLease(WorkItemLease lease)
{
    private readonly CancellationTokenSource _lost = new();
    private long _expiresAtTicks = lease.ExpiresAt.UtcTicks;

    public WorkItemLease Lease { get; } = lease;

    /// <summary>When the lease runs out unless renewed again.</summary>
    public DateTimeOffset ExpiresAt => new(Interlocked.Read(ref _expiresAtTicks), TimeSpan.Zero);

    /// <summary>Cancelled when the lease is lost: another worker may run the step now, so this one must stop.</summary>
    public CancellationToken Lost => _lost.Token;

    public bool IsLost => _lost.IsCancellationRequested;

    public void Renewed(DateTimeOffset expiresAt) => Interlocked.Exchange(ref _expiresAtTicks, expiresAt.UtcTicks);

    public void Lose() => _lost.Cancel();

    private int _committing;

    /// <summary>
    /// Set while the step's outcome is being committed, and after it was: the commit acknowledges the item (and may hand
    /// its row to the successor under a new token), so a renewal that misses it meanwhile has not lost it to anyone (a
    /// commit that finds the lease gone says so itself).
    /// </summary>
    public bool Committing
    {
        get => Volatile.Read(ref _committing) == 1;
        set => Volatile.Write(ref _committing, value ? 1 : 0);
    }
}
