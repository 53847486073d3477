using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Ordo.TestServers;

/// <summary>
/// The MCP servers tests start as real processes: the test server (test/Ordo.McpTestServer) over stdio or streamable
/// HTTP, and the official filesystem server from npm, installed into .cache/npm by test/tools/install-npm-servers.sh.
/// </summary>
public static class McpTestServers
{
#if DEBUG
    private const string Configuration = "Debug";
#else
    private const string Configuration = "Release";
#endif

    private static readonly SemaphoreSlim NpmGate = new(1, 1);

    private static readonly Lazy<string> Root = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Ordo.sln"))) return dir.FullName;
        }

        throw new InvalidOperationException($"Ordo.sln was not found above {AppContext.BaseDirectory}");
    });

    /// <summary>The repository root.</summary>
    public static string RepositoryRoot => Root.Value;

    /// <summary>The built test server.</summary>
    public static string ServerDll
    {
        get
        {
            var path = Path.Combine(RepositoryRoot, "test", "Ordo.McpTestServer", "bin", Configuration, "net10.0", "Ordo.McpTestServer.dll");
            return File.Exists(path) ? path : throw new FileNotFoundException("the MCP test server is not built (dotnet build Ordo.sln)", path);
        }
    }

    /// <summary>The dotnet host that runs it.</summary>
    public static string DotnetHost
        => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    /// <summary>The command that starts the test server over stdio.</summary>
    public static IReadOnlyList<string> StdioCommand => [DotnetHost, ServerDll];

    /// <summary>A command as a YAML flow list (JSON), for ordo.yaml.</summary>
    public static string Yaml(IEnumerable<string> command) => JsonSerializer.Serialize(command.ToArray());

    /// <summary>Whether a process with this id is running (a zombie is not).</summary>
    public static bool IsRunning(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[0];
            return state != "Z" && state != "X";
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Waits (at most <paramref name="patience"/>) for a process to be gone; true when it is.</summary>
    public static async Task<bool> GoneAsync(int pid, TimeSpan patience)
    {
        var watch = Stopwatch.StartNew();
        while (IsRunning(pid))
        {
            if (watch.Elapsed > patience) return false;
            await Task.Delay(50);
        }

        return true;
    }

    /// <summary>
    /// The entry script of <c>@modelcontextprotocol/server-filesystem</c>, installed first (as ./test.sh does) when it is
    /// not there yet.
    /// </summary>
    public static async Task<string> FilesystemServerAsync()
    {
        var script = Path.Combine(RepositoryRoot, ".cache", "npm", "node_modules", "@modelcontextprotocol", "server-filesystem", "dist", "index.js");
        await NpmGate.WaitAsync();
        try
        {
            var info = new ProcessStartInfo("bash", [Path.Combine(RepositoryRoot, "test", "tools", "install-npm-servers.sh")])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var install = Process.Start(info)!;
            var output = install.StandardOutput.ReadToEndAsync();
            var error = install.StandardError.ReadToEndAsync();
            await install.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(5));
            if (install.ExitCode != 0 || !File.Exists(script))
            {
                throw new InvalidOperationException($"install-npm-servers.sh failed ({install.ExitCode}): {await output}{await error}");
            }
        }
        finally
        {
            NpmGate.Release();
        }

        return script;
    }

    /// <summary>Starts the test server over streamable HTTP on 127.0.0.1.</summary>
    public static async Task<HttpMcpTestServer> StartHttpAsync(IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(DotnetHost, [ServerDll, "--http"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) info.Environment[k] = v;
        var process = Process.Start(info)!;
        var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
        const string Prefix = "listening on ";
        if (line is null || !line.StartsWith(Prefix, StringComparison.Ordinal))
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"the MCP test server did not start over HTTP: {line} {await process.StandardError.ReadToEndAsync()}");
        }

        return new HttpMcpTestServer(process, line[Prefix.Length..]);
    }
}

/// <summary>The test server running over streamable HTTP; killed when disposed.</summary>
public sealed class HttpMcpTestServer(Process process, string url) : IAsyncDisposable
{
    /// <summary>The MCP endpoint.</summary>
    public string Url { get; } = url;

    /// <summary>The process id.</summary>
    public int Pid => process.Id;

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        try
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
        catch (InvalidOperationException)
        {
        }

        process.Dispose();
    }
}
