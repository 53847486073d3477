using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Ordo.Cli.Bench;

/// <summary>
/// Runs the LangGraph.js peer harness in the same <c>ordo bench</c> run: copies it to a writable cache directory,
/// installs its pinned packages there once (<c>npm ci</c>; the first install compiles better-sqlite3, about two
/// minutes), runs <c>node bench.mjs</c> and parses the one JSON object it prints on stdout.
/// </summary>
internal static class PeerHarness
{
    private const string Marker = ".ordo-npm-ci-done";
    private static readonly string[] Skipped = ["node_modules", ".git"];

    /// <summary>The default cache: <c>$XDG_CACHE_HOME/ordo/peer-langgraph</c>, else <c>~/.cache/ordo/peer-langgraph</c>.</summary>
    public static string DefaultCacheDirectory
    {
        get
        {
            var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            var root = !string.IsNullOrEmpty(xdg) ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            return Path.Combine(root, "ordo", "peer-langgraph");
        }
    }

    /// <summary>
    /// The URL form (<c>postgresql://USER:PASSWORD@HOST:PORT/DATABASE</c>) of an Npgsql connection string, for the peer's
    /// PostgreSQL checkpointer (node-postgres) on the same server and database.
    /// </summary>
    public static string PostgresUrl(string connectionString)
    {
        var b = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
        var user = Uri.EscapeDataString(b.Username ?? Environment.UserName);
        var password = string.IsNullOrEmpty(b.Password) ? "" : ":" + Uri.EscapeDataString(b.Password);
        var host = string.IsNullOrEmpty(b.Host) ? "localhost" : b.Host.Split(',')[0];
        return $"postgresql://{user}{password}@{host}:{b.Port}/{Uri.EscapeDataString(b.Database ?? b.Username ?? "postgres")}";
    }

    /// <summary>Checks that <paramref name="directory"/> holds the harness.</summary>
    /// <exception cref="CliInputException">It does not.</exception>
    public static string Validate(string directory)
    {
        var full = Path.GetFullPath(directory);
        foreach (var f in new[] { "bench.mjs", "package.json", "package-lock.json" })
        {
            if (!File.Exists(Path.Combine(full, f)))
            {
                throw new CliInputException($"--peer: {full} has no {f}; expected the LangGraph.js peer harness (peer/langgraph)");
            }
        }

        return full;
    }

    public static async Task<JsonObject> RunAsync(string source, string cache, BenchSettings settings, TextWriter? progress, CancellationToken stop, string? postgresUrl = null)
    {
        var shared = settings.Workloads.Where(BenchSettings.PeerWorkloads.Contains).ToList();
        if (shared.Count == 0)
        {
            progress?.WriteLine("[bench] peer: none of the selected workloads runs on the peer");
            return new JsonObject { ["workloads"] = new JsonArray() };
        }

        await PrepareAsync(source, cache, progress, stop).ConfigureAwait(false);
        var args = new List<string> { "bench.mjs" };
        if (settings.Quick) args.Add("--quick");
        if (shared.Count != BenchSettings.PeerWorkloads.Count) args.AddRange(["--only", string.Join(",", shared)]);
        // The URL (it may hold a password) goes in the child's environment, which other users cannot read, not on its
        // command line, which they can (ps, /proc/PID/cmdline). Empty (SQLite) unless this run is on PostgreSQL, whatever
        // the caller's environment holds.
        var environment = new Dictionary<string, string> { ["PEER_POSTGRES"] = postgresUrl ?? "" };
        progress?.WriteLine($"[bench] peer: node {string.Join(' ', args)}{(postgresUrl is null ? "" : " (PostgreSQL from PEER_POSTGRES)")} (in {cache})");
        var (exit, stdout) = await RunProcessAsync("node", args, cache, progress, captureStdout: true, stop, environment).ConfigureAwait(false);
        JsonObject? result;
        try
        {
            result = JsonNode.Parse(stdout) as JsonObject;
        }
        catch (JsonException e)
        {
            throw new BenchFailedException($"the peer harness exited with {exit} and printed no JSON object on stdout ({e.Message})");
        }

        if (result is null)
        {
            throw new BenchFailedException($"the peer harness exited with {exit} and printed no JSON object on stdout");
        }

        if (exit != 0 && result["errors"] is null)
        {
            result["errors"] = new JsonObject { ["harness"] = $"node exited with {exit}" };
        }

        return result;
    }

    /// <summary>Copies the harness into the cache (the source may be read-only) and installs its packages unless an install of the same lock file is there.</summary>
    private static async Task PrepareAsync(string source, string cache, TextWriter? progress, CancellationToken stop)
    {
        Directory.CreateDirectory(cache);
        var lockChanged = !SameContent(Path.Combine(source, "package-lock.json"), Path.Combine(cache, "package-lock.json"))
                          || !SameContent(Path.Combine(source, "package.json"), Path.Combine(cache, "package.json"));
        foreach (var file in Directory.EnumerateFiles(source))
        {
            var name = Path.GetFileName(file);
            if (name.EndsWith(".db", StringComparison.Ordinal) || name.Contains(".db-", StringComparison.Ordinal)) continue;
            var target = Path.Combine(cache, name);
            if (File.Exists(target))
            {
                File.SetAttributes(target, FileAttributes.Normal);
                File.Delete(target);
            }

            File.Copy(file, target);
            // The source may be read-only; the copy must stay writable so the next run can replace it.
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(target, File.GetUnixFileMode(target) | UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
        }

        foreach (var dir in Directory.EnumerateDirectories(source))
        {
            if (!Skipped.Contains(Path.GetFileName(dir)))
            {
                progress?.WriteLine($"[bench] peer: note: sub-directory {Path.GetFileName(dir)} of {source} is not copied");
            }
        }

        var modules = Path.Combine(cache, "node_modules");
        var installed = Directory.Exists(modules)
                        && (File.Exists(Path.Combine(modules, Marker)) || File.Exists(Path.Combine(modules, "better-sqlite3", "build", "Release", "better_sqlite3.node")));
        if (installed && !lockChanged)
        {
            progress?.WriteLine($"[bench] peer: reusing the packages installed in {cache}");
            return;
        }

        progress?.WriteLine($"[bench] peer: npm ci in {cache} (the first install compiles better-sqlite3: about 2 minutes on 2 cores)");
        var (exit, _) = await RunProcessAsync("npm", ["ci", "--no-audit", "--no-fund"], cache, progress, captureStdout: false, stop).ConfigureAwait(false);
        if (exit != 0)
        {
            throw new BenchFailedException($"npm ci failed in {cache} (exit {exit}); see the output above");
        }

        await File.WriteAllTextAsync(Path.Combine(modules, Marker), "installed by ordo bench --peer\n", stop).ConfigureAwait(false);
    }

    private static bool SameContent(string a, string b)
        => File.Exists(a) && File.Exists(b) && File.ReadAllBytes(a).AsSpan().SequenceEqual(File.ReadAllBytes(b));

    /// <summary>Runs a process; its stderr (and stdout unless captured) goes to the progress writer with a <c>[peer]</c> prefix.</summary>
    private static async Task<(int Exit, string Stdout)> RunProcessAsync(
        string file, IEnumerable<string> args, string directory, TextWriter? progress, bool captureStdout, CancellationToken stop, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(file)
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
        };
        foreach (var a in args) start.ArgumentList.Add(a);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) start.Environment[name] = value;
        using var process = new Process { StartInfo = start };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new BenchFailedException($"cannot start '{file}' ({e.Message}); the peer harness needs Node.js 20 and npm on PATH");
        }

        var errors = PumpAsync(process.StandardError, progress);
        Task<string> output = captureStdout ? process.StandardOutput.ReadToEndAsync(CancellationToken.None) : PumpAsync(process.StandardOutput, progress).ContinueWith(_ => "", TaskScheduler.Default);
        try
        {
            await process.WaitForExitAsync(stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Ctrl-C: end the child (and its children: node-gyp, the compiler) that this command started.
            process.Kill(entireProcessTree: true);
            throw;
        }

        var stdout = await output.ConfigureAwait(false);
        await errors.ConfigureAwait(false);
        return (process.ExitCode, stdout);
    }

    private static async Task PumpAsync(StreamReader reader, TextWriter? progress)
    {
        while (await reader.ReadLineAsync().ConfigureAwait(false) is { } line)
        {
            progress?.WriteLine($"[peer] {line}");
        }
    }
}
