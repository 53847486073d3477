namespace Ordo.Engine.Commits;

/// <summary>
/// Where this process's workers commit the steps of a job (of the jobs hashed to one lane), one committer at a time.
/// The worker that finds the lane free commits its own step, then every step that other workers finished meanwhile,
/// planned one after the other and written together; a worker that finds the lane busy leaves its finished step here and
/// goes on with other work. A step waits no longer for its commit than it would behind a lock, steps that finish
/// together share a transaction, and no worker idles while another writes.
/// </summary>
internal sealed class CommitLane<T>
{
    private readonly Lock _lock = new();
    private List<T>? _queued;
    private bool _busy;

    /// <summary>Takes the lane (true), or queues <paramref name="commit"/> for the worker that holds it (false).</summary>
    public bool TryEnter(T commit)
    {
        lock (_lock)
        {
            if (!_busy)
            {
                _busy = true;
                return true;
            }

            (_queued ??= []).Add(commit);
            return false;
        }
    }

    /// <summary>The commits queued since the last call, oldest first (possibly none); the lane stays taken.</summary>
    public List<T> Take()
    {
        lock (_lock)
        {
            var queued = _queued ?? [];
            _queued = null;
            return queued;
        }
    }

    /// <summary>The commits queued since the last call, oldest first; or null, and the lane is free again.</summary>
    public List<T>? TakeOrLeave()
    {
        lock (_lock)
        {
            if (_queued is { Count: > 0 } queued)
            {
                _queued = null;
                return queued;
            }

            _busy = false;
            return null;
        }
    }
}
