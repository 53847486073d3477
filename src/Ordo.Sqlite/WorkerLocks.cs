using System.Collections.Concurrent;
using System.Text;
using Ordo.Storage;

namespace Ordo.Sqlite;

/// <summary>
/// Proves which workers on this host are alive, with a lock file per worker in a folder beside the database
/// (<c>ordo.db.workers/</c>). A worker takes an exclusive lock on its file before it writes its first lease and holds it
/// for the life of the store; the operating system releases the lock when the process ends, however it ends (a crash,
/// <c>kill -9</c>, a power cut of the process). So another process that can take the lock knows for certain that the
/// owner is gone; one that cannot knows it is alive. When it cannot decide — another host, a worker without a file,
/// a file system without locks — the answer is <see cref="WorkerLiveness.Unknown"/>, and the leases are waited out.
/// </summary>
/// <remarks>Thread-safe.</remarks>
internal sealed class WorkerLocks : IDisposable
{
    private readonly string _directory;
    private readonly ConcurrentDictionary<string, FileStream?> _held = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private bool? _locksWork;

    public WorkerLocks(string databasePath) => _directory = databasePath + ".workers";

    /// <summary>The folder of the lock files.</summary>
    public string Directory => _directory;

    /// <summary>Takes the lock of a worker of this process (once); call before writing a lease it owns.</summary>
    public void Hold(string worker)
    {
        if (_held.ContainsKey(worker)) return;
        lock (_gate)
        {
            if (_held.ContainsKey(worker)) return;
            FileStream? stream = null;
            if (PathOf(worker) is { } path)
            {
                try
                {
                    System.IO.Directory.CreateDirectory(_directory);
                    stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                    stream.SetLength(0);
                    stream.Write(Encoding.UTF8.GetBytes($"{worker}\n"));
                    stream.Flush();
                    _locksWork ??= LocksWork(path);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // Held already (another store of this process for the same worker), or no place for the file: its
                    // liveness stays unknown to other processes, which then wait for its leases to expire.
                    stream?.Dispose();
                    stream = null;
                }
            }

            _held[worker] = stream;
        }
    }

    /// <summary>What can be proven about <paramref name="worker"/>.</summary>
    public WorkerLiveness Check(string worker)
    {
        if (_held.ContainsKey(worker)) return WorkerLiveness.Alive;
        if (_locksWork == false || PathOf(worker) is not { } path || !OnThisHost(worker)) return WorkerLiveness.Unknown;
        try
        {
            using var probe = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
            // The lock was free: no process holds it, so the worker's process has ended.
            return _locksWork == true || LocksWork(path) ? WorkerLiveness.Dead : WorkerLiveness.Unknown;
        }
        catch (FileNotFoundException)
        {
            // It ended cleanly (its file is removed then) or never had one here: nothing proves it dead.
            return WorkerLiveness.Unknown;
        }
        catch (DirectoryNotFoundException)
        {
            return WorkerLiveness.Unknown;
        }
        catch (IOException)
        {
            return WorkerLiveness.Alive;
        }
        catch (UnauthorizedAccessException)
        {
            return WorkerLiveness.Unknown;
        }
    }

    /// <summary>Removes the lock files of ended workers that hold no lease any more, and the watch markers of ended workers.</summary>
    public void Sweep(IReadOnlySet<string> ownersWithLeases)
    {
        if (!System.IO.Directory.Exists(_directory)) return;
        foreach (var marker in System.IO.Directory.EnumerateFiles(_directory, "*.watch"))
        {
            var lockFile = Path.ChangeExtension(marker, ".lock");
            try
            {
                if (File.Exists(lockFile))
                {
                    using var probe = new FileStream(lockFile, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
                }

                File.Delete(marker);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Its worker is alive (the lock is held).
            }
        }

        foreach (var file in System.IO.Directory.EnumerateFiles(_directory, "*.lock"))
        {
            try
            {
                string owner;
                using (var probe = new FileStream(file, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
                using (var reader = new StreamReader(probe, Encoding.UTF8))
                {
                    owner = reader.ReadLine() ?? "";
                }

                if (!ownersWithLeases.Contains(owner) && !_held.ContainsKey(owner)) File.Delete(file);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Held by a live worker, or gone meanwhile.
            }
        }
    }

    /// <summary>
    /// Whether the file system's locks exclude a second opener: on a platform or setting where they do not (locking
    /// turned off), a free lock would prove nothing, and no worker is ever judged dead.
    /// </summary>
    private static bool LocksWork(string heldPath)
    {
        try
        {
            using var second = new FileStream(heldPath, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
            return false;
        }
        catch (IOException)
        {
            return true;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>The lock file of a worker named <c>host/pid/instance</c>; null for a name of another form.</summary>
    private string? PathOf(string worker)
    {
        var parts = worker.Split('/');
        if (parts.Length != 3 || parts[2].Length == 0 || parts[2].Any(c => !char.IsAsciiLetterOrDigit(c) && c != '-')) return null;
        return Path.Combine(_directory, $"{parts[2]}.lock");
    }

    private static bool OnThisHost(string worker) => worker.Split('/')[0] == Environment.MachineName;

    /// <summary>Releases this process's locks and removes their files (a clean end: nothing of theirs needs taking over).</summary>
    public void Dispose()
    {
        foreach (var (worker, stream) in _held)
        {
            if (stream is null) continue;
            var path = stream.Name;
            stream.Dispose();
            try
            {
                File.Delete(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Another process may sweep it later.
            }

            _held.TryRemove(worker, out _);
        }
    }
}
