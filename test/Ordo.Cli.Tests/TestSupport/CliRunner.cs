namespace Ordo.Cli.Tests.TestSupport;

/// <summary>Runs the CLI in this process, exactly as the executable would but with captured output.</summary>
internal static class CliRunner
{
    public static async Task<CliResult> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await OrdoCli.RunAsync(args, TextWriter.Synchronized(output), TextWriter.Synchronized(error), terminal: false, CancellationToken.None);
        return new CliResult(code, output.ToString(), error.ToString());
    }

    /// <summary>Runs the CLI and asserts its exit code, showing everything it printed when the code is not the expected one.</summary>
    public static async Task<CliResult> RunExpectingAsync(int exitCode, params string[] args)
    {
        var result = await RunAsync(args);
        Assert.True(result.ExitCode == exitCode, $"ordo {string.Join(' ', args)}: expected exit code {exitCode}\n{result}");
        return result;
    }
}
