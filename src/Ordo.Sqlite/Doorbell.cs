namespace Ordo.Sqlite;

/// <summary>
/// Wakes workers of other processes on the same database when there is new work, without their polling the database:
/// a worker that waits watches a file beside the database (<c>ordo.db.workers/doorbell</c>) through the operating
/// system's file notifications; a process that commits work others may take (a submission, a successor for anyone, a
/// released item) touches it. Touching is skipped while no other process watches, so a lone run pays nothing for it.
/// A missed ring costs at most the waiting worker's fallback poll.
/// </summary>
/// <remarks>Thread-safe.</remarks>
internal sealed class Doorbell(string directory) : IDisposable
{
    private static readonly TimeSpan RecheckWatchers = TimeSpan.FromSeconds(1);
    private readonly Lock _gate = new();
    private readonly string _bell = Path.Combine(directory, "doorbell");
    private readonly List<(FileSystemWatcher Watcher, string Marker)> _watching = [];
    private long _watchersCheckedAt;
    private bool _watchersChecked;
    private bool _othersWatch;

    /// <summary>Calls <paramref name="wake"/> whenever another process rings; dispose the result to stop.</summary>
    public IDisposable Watch(string worker, Action wake)
    {
        Directory.CreateDirectory(directory);
        var marker = Path.Combine(directory, $"{Instance(worker)}.watch");
        File.WriteAllText(marker, worker + "\n");
        if (!File.Exists(_bell)) File.WriteAllText(_bell, "");
        var watcher = new FileSystemWatcher(directory, "doorbell") { NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.Attributes | NotifyFilters.FileName };
        watcher.Changed += (_, _) => wake();
        watcher.Created += (_, _) => wake();
        watcher.EnableRaisingEvents = true;
        lock (_gate) _watching.Add((watcher, marker));
        return new Registration(this, watcher, marker);
    }

    /// <summary>Tells watching processes that there may be work for them.</summary>
    public void Ring()
    {
        if (!OthersWatch()) return;
        try
        {
            File.SetLastWriteTimeUtc(_bell, TimeProvider.System.GetUtcNow().UtcDateTime);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The watchers' fallback poll finds the work.
        }
    }

    private bool OthersWatch()
    {
        var now = Environment.TickCount64;
        lock (_gate)
        {
            if (_watchersChecked && now - _watchersCheckedAt < (long)RecheckWatchers.TotalMilliseconds) return _othersWatch;
            _watchersChecked = true;
            _watchersCheckedAt = now;
            var own = _watching.Select(w => w.Marker).ToHashSet(StringComparer.Ordinal);
            try
            {
                _othersWatch = Directory.Exists(directory) && Directory.EnumerateFiles(directory, "*.watch").Any(f => !own.Contains(f));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _othersWatch = false;
            }

            return _othersWatch;
        }
    }

    private static string Instance(string worker) => worker.Split('/')[^1];

    private void Stop(FileSystemWatcher watcher, string marker)
    {
        lock (_gate) _watching.RemoveAll(w => ReferenceEquals(w.Watcher, watcher));
        watcher.Dispose();
        try
        {
            File.Delete(marker);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Swept with its worker's lock file later.
        }
    }

    public void Dispose()
    {
        List<(FileSystemWatcher Watcher, string Marker)> all;
        lock (_gate) all = [.. _watching];
        foreach (var (watcher, marker) in all) Stop(watcher, marker);
    }

    private sealed class Registration(Doorbell bell, FileSystemWatcher watcher, string marker) : IDisposable
    {
        public void Dispose() => bell.Stop(watcher, marker);
    }
}
