namespace Ordo.Postgres;

/// <summary>
/// How many of a process's writes of one kind (<typeparamref name="TWork"/>: step commits, job submissions) are in flight
/// on the server at once. A write that finds a slot free is written on its own, at once; one that finds every slot taken
/// waits, and the next slot to free takes every write waiting by then (at most <see cref="MaxGroup"/>) and writes them as
/// one transaction: one round trip, one WAL flush, one server process busy, however many workers wrote meanwhile. A
/// lone write pays nothing for it.
/// </summary>
/// <typeparam name="TWork">What is written.</typeparam>
/// <typeparam name="TResult">What its writer is given back.</typeparam>
/// <remarks>
/// The writes of a group go in the order of their jobs (<c>jobOf</c>; a job's writes keep their own order), the same for
/// every group, so that two groups never wait for each other's rows. When the server refuses a group as a whole
/// (<c>together</c> returns null: one write was refused, and the transaction wrote nothing), each write of it is made
/// again on its own (<c>alone</c>), in the same slot, and only the refused one is refused. A write that waits is made
/// whatever becomes of its caller's cancellation.
/// </remarks>
internal sealed class CommitGate<TWork, TResult>
{
    private readonly Lock _lock = new();
    private readonly int _slots;
    private readonly Func<TWork, string> _jobOf;
    private readonly Func<IReadOnlyList<TWork>, Task<TResult[]?>> _together;
    private readonly Func<TWork, CancellationToken, Task<TResult>> _alone;
    private List<Waiting>? _waiting;
    private int _busy;
    private long _writtenTogether;

    /// <summary>Creates a gate of <paramref name="slots"/> slots whose groups hold at most <paramref name="maxGroup"/> writes.</summary>
    /// <param name="slots">How many writes or groups are in flight at once.</param>
    /// <param name="maxGroup">The most writes of one group.</param>
    /// <param name="jobOf">The job a write is for: groups are written in the order of their jobs.</param>
    /// <param name="together">Writes a group in one transaction; null when the server refused it and nothing was written.</param>
    /// <param name="alone">Writes one in a transaction of its own.</param>
    public CommitGate(int slots, int maxGroup, Func<TWork, string> jobOf, Func<IReadOnlyList<TWork>, Task<TResult[]?>> together, Func<TWork, CancellationToken, Task<TResult>> alone)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(slots, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxGroup, 1);
        _slots = slots;
        MaxGroup = maxGroup;
        _jobOf = jobOf;
        _together = together;
        _alone = alone;
    }

    /// <summary>How many writes waited for a slot and were written in a group of several.</summary>
    public long WrittenTogether => Interlocked.Read(ref _writtenTogether);

    /// <summary>Writes <paramref name="work"/>: at once when a slot is free, else in the group the next free slot writes.</summary>
    public async Task<TResult> WriteAsync(TWork work, CancellationToken cancellationToken)
    {
        if (Enter(work) is { } waited) return await waited.ConfigureAwait(false);
        try
        {
            return await _alone(work, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            WriteWaiting();
        }
    }

    /// <summary>Gives a slot back; the writes that waited for it are written, in the background, in the same slot.</summary>
    private void WriteWaiting()
    {
        if (Leave() is { } group) _ = Task.Run(() => WriteGroupAsync(group));
    }

    private async Task WriteGroupAsync(List<Waiting> group)
    {
        try
        {
            var ordered = group.OrderBy(w => _jobOf(w.Work), StringComparer.Ordinal).ToList();
            var together = ordered.Count > 1 ? await _together([.. ordered.Select(w => w.Work)]).ConfigureAwait(false) : null;
            if (together is not null) Interlocked.Add(ref _writtenTogether, ordered.Count);
            for (var i = 0; i < ordered.Count; i++)
            {
                if (together is not null)
                {
                    ordered[i].Result.TrySetResult(together[i]);
                    continue;
                }

                try
                {
                    ordered[i].Result.TrySetResult(await _alone(ordered[i].Work, CancellationToken.None).ConfigureAwait(false));
                }
                catch (Exception e)
                {
                    ordered[i].Result.TrySetException(e);
                }
            }
        }
        catch (Exception e)
        {
            foreach (var w in group) w.Result.TrySetException(e);
        }
        finally
        {
            WriteWaiting();
        }
    }

    /// <summary>The most writes one group transaction carries.</summary>
    public int MaxGroup { get; }

    /// <summary>
    /// Takes a slot (null: the caller writes on its own, then calls <see cref="Leave"/>), or queues the write and returns
    /// the task of its result, set when a group that carries it is written.
    /// </summary>
    internal Task<TResult>? Enter(TWork work)
    {
        lock (_lock)
        {
            if (_busy < _slots)
            {
                _busy++;
                return null;
            }

            var waiting = new Waiting(work, new TaskCompletionSource<TResult>(TaskCreationOptions.RunContinuationsAsynchronously));
            (_waiting ??= []).Add(waiting);
            return waiting.Result.Task;
        }
    }

    /// <summary>
    /// Gives a slot back: returns the writes waiting (oldest first, at most <see cref="MaxGroup"/>), which the caller
    /// writes in the same slot and then calls <see cref="Leave"/> again; or null, and the slot is free.
    /// </summary>
    internal List<Waiting>? Leave()
    {
        lock (_lock)
        {
            if (_waiting is not { Count: > 0 } waiting)
            {
                _busy--;
                return null;
            }

            if (waiting.Count <= MaxGroup)
            {
                _waiting = null;
                return waiting;
            }

            var group = waiting.GetRange(0, MaxGroup);
            waiting.RemoveRange(0, MaxGroup);
            return group;
        }
    }

    /// <summary>A write waiting for a slot, and where its result goes.</summary>
    internal sealed record Waiting(TWork Work, TaskCompletionSource<TResult> Result);
}
