using System.Text.RegularExpressions;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Samples;

/// <summary>
/// docs/patterns.md promises that every YAML block on the page is either an excerpt of a sample (named in its first
/// line) or a complete workflow that <c>ordo validate</c> accepts. This keeps the page honest as the samples change.
/// </summary>
public sealed partial class PatternDocsTests
{
    private static readonly string Page = Path.Combine(TestPaths.RepositoryRoot, "docs", "patterns.md");

    public static TheoryData<int> Blocks => [.. Enumerable.Range(0, YamlBlocks().Count)];

    [Fact]
    public void ThePageHasYamlForEveryPattern()
    {
        var text = string.Join("\n", YamlBlocks());
        foreach (var kind in new[] { "parallel:", "foreach:", "workflow:", "plan:", "supervise:", "board:", "auction:", "approval:" })
        {
            Assert.Contains(kind, text, StringComparison.Ordinal);
        }
    }

    [Theory]
    [MemberData(nameof(Blocks))]
    public async Task EveryYamlBlock_IsAnExcerptOfItsSample_OrAValidWorkflow(int index)
    {
        var block = YamlBlocks()[index];
        var lines = block.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Trim().Length > 0).ToList();
        if (SampleName().Match(lines[0]) is { Success: true } named)
        {
            // An excerpt: every line of it appears, in order, in the sample file (elisions are marked "# …").
            var file = Path.Combine(TestPaths.RepositoryRoot, named.Groups[1].Value);
            Assert.True(File.Exists(file), $"block {index} names {named.Groups[1].Value}, which does not exist");
            var source = File.ReadAllLines(file).Select(l => l.TrimEnd()).ToList();
            var at = 0;
            foreach (var line in lines.Skip(1).Where(l => !l.TrimStart().StartsWith("# …", StringComparison.Ordinal) && !l.TrimStart().StartsWith("# ...", StringComparison.Ordinal)))
            {
                var found = source.FindIndex(at, s => s.Trim() == line.Trim());
                Assert.True(found >= 0, $"block {index}: line '{line.Trim()}' is not in {named.Groups[1].Value} (after line {at})");
                at = found + 1;
            }

            return;
        }

        // A complete workflow: ordo validate accepts it as written.
        using var w = Workspace.Create();
        var path = w.Write("doc.yaml", block);
        await CliRunner.RunExpectingAsync(0, "validate", path);
    }

    private static List<string> YamlBlocks()
        => [.. YamlFence().Matches(File.ReadAllText(Page).ReplaceLineEndings("\n")).Select(m => m.Groups[1].Value)];

    [GeneratedRegex(@"```yaml\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex YamlFence();

    [GeneratedRegex(@"^\s*#\s*(samples/\S+\.ya?ml)\s*$")]
    private static partial Regex SampleName();
}
