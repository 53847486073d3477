using Ordo.Storage;

namespace Ordo.Postgres;

/// <summary>
/// How many of a process's commits are in flight on the server at once. A commit that finds a slot free is written on
/// its own, at once; one that finds every slot taken waits, and the next slot to free takes every commit waiting by then
/// (at most <see cref="MaxGroup"/>) and writes them as one transaction: one round trip, one WAL flush, one server
/// process busy, however many workers finished a step meanwhile. A lone commit pays nothing for it.
/// </summary>
internal sealed class CommitGate
{
    private readonly Lock _lock = new();
    private readonly int _slots;
    private List<Waiting>? _waiting;
    private int _busy;

    /// <summary>Creates a gate of <paramref name="slots"/> slots whose groups hold at most <paramref name="maxGroup"/> commits.</summary>
    public CommitGate(int slots, int maxGroup)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(slots, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxGroup, 1);
        _slots = slots;
        MaxGroup = maxGroup;
    }

    /// <summary>The most commits one group transaction carries.</summary>
    public int MaxGroup { get; }

    /// <summary>
    /// Takes a slot (null: the caller commits on its own, then calls <see cref="Leave"/>), or queues the commit and returns
    /// the task of its result, set when a group that carries it is written.
    /// </summary>
    public Task<CommitResult>? Enter(JobCommit commit)
    {
        lock (_lock)
        {
            if (_busy < _slots)
            {
                _busy++;
                return null;
            }

            var waiting = new Waiting(commit, new TaskCompletionSource<CommitResult>(TaskCreationOptions.RunContinuationsAsynchronously));
            (_waiting ??= []).Add(waiting);
            return waiting.Result.Task;
        }
    }

    /// <summary>
    /// Gives a slot back: returns the commits waiting (oldest first, at most <see cref="MaxGroup"/>), which the caller
    /// writes in the same slot and then calls <see cref="Leave"/> again; or null, and the slot is free.
    /// </summary>
    public List<Waiting>? Leave()
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

    /// <summary>A commit waiting for a slot, and where its result goes.</summary>
    internal sealed record Waiting(JobCommit Commit, TaskCompletionSource<CommitResult> Result);
}
