using System.Text.RegularExpressions;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Commands;

/// <summary>
/// docs/cli.md and the command agree: every command of its table exists (its <c>--help</c> exits 0), with every option
/// the table gives it; every global option it lists is in <c>ordo --help</c>; and every command of <c>ordo --help</c>
/// is in the table.
/// </summary>
public sealed partial class CliDocsTests
{
    private static readonly string Page = File.ReadAllText(Path.Combine(TestPaths.RepositoryRoot, "docs", "cli.md"));

    public static TheoryData<string> DocumentedCommands()
    {
        var data = new TheoryData<string>();
        foreach (var usage in TableUsages())
        {
            data.Add(usage);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(DocumentedCommands))]
    public async Task EveryCommandOfTheTable_Exists_WithEveryOptionItShows(string usage)
    {
        var words = CommandWords(usage);
        var help = await CliRunner.RunAsync([.. words, "--help"]);
        Assert.True(help.ExitCode == 0, $"ordo {string.Join(' ', words)} --help\n{help}");
        Assert.Contains($"ordo {string.Join(' ', words)}", help.Out, StringComparison.Ordinal);
        foreach (var option in Options().Matches(usage).Select(m => m.Value))
        {
            Assert.True(help.Out.Contains(option + " ", StringComparison.Ordinal) || help.Out.Contains(option + "\n", StringComparison.Ordinal) || help.Out.Contains(option + ",", StringComparison.Ordinal),
                $"docs/cli.md shows {option} for 'ordo {string.Join(' ', words)}', which its --help does not list:\n{help.Out}");
        }
    }

    [Fact]
    public async Task EveryGlobalOption_IsInTheHelp_AndEveryCommandOfTheHelp_IsInTheTable()
    {
        var help = (await CliRunner.RunExpectingAsync(0, "--help")).Out;
        var globals = Page[Page.IndexOf("Global options:", StringComparison.Ordinal)..];
        globals = globals[..globals.IndexOf("\n\n", StringComparison.Ordinal)];
        var listed = Options().Matches(globals).Select(m => m.Value).Distinct().ToList();
        Assert.Contains("--postgres", listed);
        foreach (var option in listed)
        {
            Assert.Contains(option, help, StringComparison.Ordinal);
        }

        var commands = help[help.IndexOf("Commands:", StringComparison.Ordinal)..].Split('\n').Skip(1)
            .Select(l => l.Trim()).Where(l => l.Length > 0).Select(l => l.Split(' ')[0]).ToList();
        Assert.NotEmpty(commands);
        var documented = TableUsages().Select(u => CommandWords(u)[0]).ToHashSet(StringComparer.Ordinal);
        foreach (var command in commands)
        {
            Assert.True(documented.Contains(command), $"'ordo {command}' is in ordo --help but not in the table of docs/cli.md");
        }
    }

    [Fact]
    public async Task Postgres_IsDescribed_AndBadSettingsAreRefusedWithTheReason()
    {
        var help = (await CliRunner.RunExpectingAsync(0, "--help")).Out;
        var line = help.Split('\n').Single(l => l.TrimStart().StartsWith("--postgres", StringComparison.Ordinal));
        Assert.Contains("PostgreSQL connection string", line, StringComparison.Ordinal);

        // A server nobody listens on: named with its host and port, no stack trace, exit 7 (the store cannot be used).
        var unreachable = await CliRunner.RunAsync("jobs", "--postgres", "Host=127.0.0.1;Port=1;Username=ordo;Database=ordo;Timeout=3");
        Assert.Equal(7, unreachable.ExitCode);
        Assert.Contains("PostgreSQL at 127.0.0.1:1 cannot be reached", unreachable.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", unreachable.Err, StringComparison.Ordinal);

        var malformed = await CliRunner.RunAsync("jobs", "--postgres", "Hots=db");
        Assert.Equal(2, malformed.ExitCode);
        Assert.StartsWith("ordo: --postgres: the PostgreSQL connection string is not valid", malformed.Err, StringComparison.Ordinal);

        var both = await CliRunner.RunAsync("jobs", "--postgres", "Host=db", "--db", "x.db");
        Assert.Equal(2, both.ExitCode);
        Assert.Contains("--db and --postgres", both.Err, StringComparison.Ordinal);
    }

    /// <summary>The usages in the first column of the command table; a cell with several (<c>a</c> / <c>b</c>) gives each.</summary>
    private static List<string> TableUsages()
    {
        var table = Page[Page.IndexOf("## Commands", StringComparison.Ordinal)..Page.IndexOf("## Exit codes", StringComparison.Ordinal)];
        return [.. table.Split('\n').Where(l => l.StartsWith("| `ordo ", StringComparison.Ordinal))
            .SelectMany(l => Usage().Matches(l.Split(" | ")[0]).Select(m => m.Groups[1].Value))];
    }

    /// <summary>The command and subcommand words of a usage: <c>ordo kill set TARGET</c> → kill, set.</summary>
    private static List<string> CommandWords(string usage)
        => [.. usage.Split(' ').Skip(1).TakeWhile(w => Regex.IsMatch(w, "^[a-z]+$"))];

    [GeneratedRegex(@"`(ordo [^`]+)`")]
    private static partial Regex Usage();

    [GeneratedRegex(@"--[a-z][a-z-]*")]
    private static partial Regex Options();
}
