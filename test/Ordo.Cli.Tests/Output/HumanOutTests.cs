using Ordo.Cli.Output;

namespace Ordo.Cli.Tests.Output;

public sealed class HumanOutTests
{
    [Fact]
    public void DbOption_DefaultDatabaseHere_IsOmitted()
    {
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("ORDO_DB"))) return;
        Assert.Equal("", HumanOut.DbOption(Path.GetFullPath("ordo.db")));
    }

    [Fact]
    public void DbOption_BelowTheWorkingDirectory_IsRelative()
        => Assert.Equal(" --db state/jobs.db", HumanOut.DbOption(Path.GetFullPath(Path.Combine("state", "jobs.db"))));

    [Fact]
    public void DbOption_OutsideTheWorkingDirectory_IsTheFullPath()
    {
        var path = Path.Combine(Path.GetTempPath(), "elsewhere", "ordo.db");
        Assert.Equal(" --db " + path, HumanOut.DbOption(path));
    }

    [Fact]
    public void DbOption_PathWithSpaces_IsQuotedForAShell()
    {
        var path = Path.Combine(Path.GetTempPath(), "my jobs", "it's.db");
        Assert.Equal(" --db '" + path.Replace("'", "'\\''", StringComparison.Ordinal) + "'", HumanOut.DbOption(path));
    }
}
