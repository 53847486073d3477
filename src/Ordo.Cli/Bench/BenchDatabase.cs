using System.Collections.Concurrent;
using Microsoft.Data.Sqlite;
using Ordo.Sqlite;

namespace Ordo.Cli.Bench;

/// <summary>
/// A fresh temp directory holding one SQLite file, for one workload (one length for W5); deleted when disposed,
/// and any left over is deleted when the process exits.
/// </summary>
internal sealed class BenchDatabase : IDisposable
{
    private static readonly ConcurrentDictionary<string, byte> Live = new(StringComparer.Ordinal);

    static BenchDatabase() => AppDomain.CurrentDomain.ProcessExit += (_, _) =>
    {
        foreach (var dir in Live.Keys) TryDelete(dir);
    };

    private BenchDatabase(string directory)
    {
        Directory = directory;
        Path = System.IO.Path.Combine(directory, "ordo.db");
    }

    /// <summary>The temp directory.</summary>
    public string Directory { get; }

    /// <summary>The database file.</summary>
    public string Path { get; }

    public static BenchDatabase Create(string tag)
    {
        var dir = System.IO.Directory.CreateTempSubdirectory($"ordo-bench-{tag}-").FullName;
        Live[dir] = 0;
        return new BenchDatabase(dir);
    }

    /// <summary>Opens the store over this file with the given durability (not yet initialized).</summary>
    public SqliteOrdoStore OpenStore(SqliteDurability durability = SqliteDurability.Normal)
        => new(new SqliteStoreOptions { Path = Path, Durability = durability });

    /// <summary>A plain connection to the file, for inspection (row counts, pragmas, checkpoints).</summary>
    public SqliteConnection OpenInspector()
    {
        var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path, Mode = SqliteOpenMode.ReadWrite, Pooling = false }.ToString());
        c.Open();
        return c;
    }

    public long FileBytes => SizeOf(Path);

    public long WalBytes => SizeOf(Path + "-wal");

    public void Dispose()
    {
        TryDelete(Directory);
        Live.TryRemove(Directory, out _);
    }

    private static long SizeOf(string file) => File.Exists(file) ? new FileInfo(file).Length : 0;

    private static void TryDelete(string dir)
    {
        try
        {
            if (System.IO.Directory.Exists(dir)) System.IO.Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a temp directory left behind is harmless.
        }
        catch (UnauthorizedAccessException)
        {
            // As above.
        }
    }
}
