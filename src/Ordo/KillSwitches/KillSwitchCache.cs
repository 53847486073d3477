using Ordo.Storage;

namespace Ordo.KillSwitches;

/// <summary>
/// The kill switches of the store, re-read at most every <c>refresh</c> so that every worker honours a switch at
/// its next step or tool call without a query per step.
/// </summary>
/// <remarks>Thread-safe.</remarks>
internal sealed class KillSwitchCache(IOrdoStore store, TimeProvider time, TimeSpan refresh) : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private IReadOnlyList<(KillSwitchTarget Target, KillSwitch Switch)> _switches = [];
    private long _loadedAt = long.MinValue;

    /// <summary>The switch that covers <paramref name="kind"/>:<paramref name="name"/> in the jobs of <paramref name="tenant"/>, if any.</summary>
    public async ValueTask<KillSwitch?> FindAsync(string kind, string name, string tenant, CancellationToken cancellationToken)
    {
        var switches = await CurrentAsync(cancellationToken).ConfigureAwait(false);
        foreach (var (target, s) in switches)
        {
            if (s.Covers(tenant) && target.Matches(kind, name)) return s;
        }

        return null;
    }

    /// <inheritdoc />
    public void Dispose() => _gate.Dispose();

    /// <summary>Forgets the cached switches (after a change in this process).</summary>
    public void Invalidate() => Interlocked.Exchange(ref _loadedAt, long.MinValue);

    private async ValueTask<IReadOnlyList<(KillSwitchTarget, KillSwitch)>> CurrentAsync(CancellationToken cancellationToken)
    {
        if (time.GetElapsedTime(Interlocked.Read(ref _loadedAt)) < refresh && Interlocked.Read(ref _loadedAt) != long.MinValue)
        {
            return _switches;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Interlocked.Read(ref _loadedAt) == long.MinValue || time.GetElapsedTime(Interlocked.Read(ref _loadedAt)) >= refresh)
            {
                var list = await store.ListKillSwitchesAsync(cancellationToken).ConfigureAwait(false);
                _switches = list.Select(s => (KillSwitchTarget.TryParse(s.Target, out var t) ? t : null, s)).Where(x => x.Item1 is not null).Select(x => (x.Item1!, x.s)).ToList();
                Interlocked.Exchange(ref _loadedAt, time.GetTimestamp());
            }

            return _switches;
        }
        finally
        {
            _gate.Release();
        }
    }
}
