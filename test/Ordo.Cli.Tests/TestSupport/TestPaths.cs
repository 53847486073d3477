namespace Ordo.Cli.Tests.TestSupport;

/// <summary>Where the built pieces the tests use live: the repository, the CLI build, the test plugin and the samples.</summary>
internal static class TestPaths
{
#if DEBUG
    public const string Configuration = "Debug";
#else
    public const string Configuration = "Release";
#endif

    private static readonly Lazy<string> Root = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Ordo.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"Ordo.sln was not found above {AppContext.BaseDirectory}");
    });

    /// <summary>The repository root (the folder of Ordo.sln).</summary>
    public static string RepositoryRoot => Root.Value;

    /// <summary>The sample folder as copied to the test output (without its databases).</summary>
    public static string Sample(string name)
    {
        var copied = Path.Combine(AppContext.BaseDirectory, "samples", name);
        return Directory.Exists(copied) ? copied : Path.Combine(RepositoryRoot, "samples", name);
    }

    /// <summary>Ordo.Cli.dll in the CLI's own output folder (same configuration as the tests), else the copy beside the tests.</summary>
    public static string CliDll
    {
        get
        {
            var own = Path.Combine(RepositoryRoot, "src", "Ordo.Cli", "bin", Configuration, "net10.0", "Ordo.Cli.dll");
            return File.Exists(own) ? own : Path.Combine(AppContext.BaseDirectory, "Ordo.Cli.dll");
        }
    }

    /// <summary>The plugin with the code agents Doubler, ToolCaller, Sleeper and the code tool EchoTool.</summary>
    public static string TestPluginDll
    {
        get
        {
            var path = Path.Combine(RepositoryRoot, "test", "Ordo.TestPlugins", "bin", Configuration, "net10.0", "Ordo.TestPlugins.dll");
            return File.Exists(path) ? path : throw new FileNotFoundException("the test plugin is not built", path);
        }
    }

    /// <summary>The dotnet host that runs the CLI out of process.</summary>
    public static string DotnetHost
        => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
}
