using System.Security.Cryptography;

namespace Ordo.Cli.Tests.TestSupport;

/// <summary>A temporary folder for one test, with a database path; deleted when disposed.</summary>
internal sealed class Workspace : IDisposable
{
    private Workspace(string root)
    {
        Root = root;
        Db = Path.Combine(root, "ordo.db");
    }

    /// <summary>The folder.</summary>
    public string Root { get; }

    /// <summary>The Ordo database every command of the test is given with <c>--db</c>.</summary>
    public string Db { get; }

    /// <summary>Creates an empty workspace.</summary>
    public static Workspace Create()
    {
        var root = Path.Combine(Path.GetTempPath(), "ordo-cli-tests", Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(root);
        return new Workspace(root);
    }

    /// <summary>Creates a workspace holding a copy of a sample (without databases) in the folder <paramref name="folder"/>.</summary>
    public static Workspace WithSample(string sample = "invoice-reconciliation", string folder = "sample")
    {
        var w = Create();
        CopyDirectory(TestPaths.Sample(sample), Path.Combine(w.Root, folder));
        return w;
    }

    /// <summary>The full path of a file in the workspace.</summary>
    public string PathOf(string relative) => Path.Combine(Root, relative);

    /// <summary>Writes a file in the workspace and returns its full path.</summary>
    public string Write(string relative, string content)
    {
        var path = PathOf(relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        return path;
    }

    /// <summary>A fingerprint of the database files (main file, WAL, shared memory); "absent" when there is no database.</summary>
    public string DbFingerprint()
    {
        if (!File.Exists(Db))
        {
            return "absent";
        }

        var parts = new List<string>();
        foreach (var suffix in new[] { "", "-wal", "-journal" })
        {
            var path = Db + suffix;

            // An empty log holds nothing (a reader of a WAL database may create one).
            if (File.Exists(path) && (suffix.Length == 0 || new FileInfo(path).Length > 0))
            {
                parts.Add(suffix + "=" + Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path))));
            }
        }

        return string.Join(";", parts);
    }

    public void Dispose()
    {
        // A second try covers files that a process which just exited was still closing.
        for (var i = 0; i < 2; i++)
        {
            try
            {
                if (Directory.Exists(Root)) Directory.Delete(Root, recursive: true);
                return;
            }
            catch (IOException) when (i == 0)
            {
            }
            catch (UnauthorizedAccessException) when (i == 0)
            {
            }
        }
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(from, file);
            if (relative.EndsWith(".db", StringComparison.Ordinal) || relative.Contains(".db-", StringComparison.Ordinal))
            {
                continue;
            }

            var target = Path.Combine(to, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }
}
