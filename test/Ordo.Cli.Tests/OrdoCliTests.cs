using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests;

public sealed class OrdoCliTests
{
    [Theory]
    [InlineData("ordo [command] [options]", "--help")]
    [InlineData("ordo run <workflow> [options]", "run", "--help")]
    [InlineData("ordo audit verify [<job>] [options]", "audit", "verify", "--help")]
    public async Task Help_UsageNamesTheCommandOrdo(string usage, params string[] args)
    {
        var r = await CliRunner.RunExpectingAsync(0, args);
        Assert.Contains(usage, r.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("Ordo.Cli", r.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Version_PrintsTheVersion()
    {
        var r = await CliRunner.RunExpectingAsync(0, "--version");
        Assert.Matches(@"^\d+\.\d+\.\d+", r.Out);
    }

    [Fact]
    public async Task NoCommand_IsInvalidInputWithAUsageHint()
    {
        var r = await CliRunner.RunExpectingAsync(2, []);
        Assert.Contains("Run 'ordo --help' for usage.", r.Err, StringComparison.Ordinal);
    }
}
