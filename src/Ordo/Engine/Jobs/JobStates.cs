using System.Collections.Concurrent;
using Ordo.Events;
using Ordo.State;
using Ordo.Storage;

namespace Ordo.Engine.Jobs;

/// <summary>
/// The latest known state of each active job in this process. A claimed item catches its job up with the events
/// written since (one read); a step that continues its own job needs no read at all. Snapshot plus events since
/// is how a job is loaded from cold, so loading cost does not grow with the length of the log.
/// </summary>
internal sealed class JobStates(IOrdoStore store, int capacity = 10_000)
{
    private readonly ConcurrentDictionary<JobId, Entry> _cache = new();
    private int _count;

    /// <summary>The state this process last saw, without reading the store (null when it has none).</summary>
    public JobState? Cached(JobId jobId) => _cache.TryGetValue(jobId, out var entry) ? entry.State : null;

    public async ValueTask<JobState?> LoadAsync(JobId jobId, CancellationToken cancellationToken, List<EventEnvelope>? caughtUp = null)
    {
        JobState? state = _cache.TryGetValue(jobId, out var entry) ? entry.State : null;
        if (state is null)
        {
            var snapshot = await store.GetSnapshotAsync(jobId, cancellationToken).ConfigureAwait(false);
            if (snapshot is not null)
            {
                state = StateSnapshotCodec.Decode(snapshot);
            }
        }

        await foreach (var e in store.ReadEventsAsync(jobId, state?.Seq ?? 0, cancellationToken).ConfigureAwait(false))
        {
            state = state is null ? JobStateReducer.Start(e) : JobStateReducer.Apply(state, e);
            caughtUp?.Add(e);
        }

        if (state is not null)
        {
            Remember(state, entry?.LastSnapshotSeq ?? 0);
        }

        return state;
    }

    /// <summary>
    /// Whether a snapshot is due: every <paramref name="every"/> events, and never more often than every four
    /// events per step the state holds, so that snapshot cost stays constant per event however long the job grows.
    /// </summary>
    public bool SnapshotDue(JobState before, JobState after, int every)
    {
        var last = _cache.TryGetValue(after.JobId, out var entry) ? entry.LastSnapshotSeq : 0;
        var interval = Math.Max(every, 4L * (after.Steps.Count + after.Artifacts.Count));
        return after.Seq - last >= interval && after.Seq > before.Seq && !after.Status.IsTerminal();
    }

    public void Remember(JobState state, long? snapshotSeq = null)
    {
        if (state.Status.IsTerminal())
        {
            if (_cache.TryRemove(state.JobId, out _)) Interlocked.Decrement(ref _count);
            return;
        }

        if (Volatile.Read(ref _count) >= capacity && !_cache.ContainsKey(state.JobId))
        {
            // Forget the oldest half; a forgotten job is reloaded from its snapshot when it is next needed.
            foreach (var old in _cache.OrderBy(kv => kv.Value.Touched).Take(capacity / 2).Select(kv => kv.Key).ToList())
            {
                if (_cache.TryRemove(old, out _)) Interlocked.Decrement(ref _count);
            }
        }

        var added = false;
        _cache.AddOrUpdate(
            state.JobId,
            _ =>
            {
                added = true;
                return new Entry(state, snapshotSeq ?? 0, Environment.TickCount64);
            },
            (_, existing) => existing.State.Seq > state.Seq ? existing : new Entry(state, snapshotSeq ?? existing.LastSnapshotSeq, Environment.TickCount64));
        if (added) Interlocked.Increment(ref _count);
    }

    private sealed record Entry(JobState State, long LastSnapshotSeq, long Touched);
}
