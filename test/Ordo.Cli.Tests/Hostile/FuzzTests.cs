using System.Text;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Hostile;

/// <summary>
/// Random mutations of the samples' workflow, config, tools and input files, run through <c>ordo validate</c>: every
/// one ends as valid (exit 0) or as an input error that says where (exit 2) — never an internal error, never a hang,
/// never past a memory bound. 60 cases by default, times <c>ORDO_TORTURE_SCALE</c> (the seed is printed with any
/// failure, and <c>ORDO_TORTURE_SEED</c> replays it).
/// </summary>
public sealed class FuzzTests
{
    private static readonly string[] Samples = ["invoice-reconciliation", "governed-payment", "patterns/foreach", "patterns/parallel", "patterns/supervise"];

    private static readonly string[] Fragments =
    [
        "&a ", "*a", "*b", "&b [*a, *a, *a]", "[", "]", "{", "}", ": ", "- ", "\n  - ", "\t", "\"", "'", "${", "}", "${ input }", "${ (() => { for(;;){} })() }",
        "${secret:X}", "${env:HOME}", "!!binary ", "!!python/object ", "? ", "|\n  ", ">-\n  ", "---\n", "...\n", "#", "%YAML 1.1\n", "<<: *a\n",
        "\u0000", "\ud83d\ude00", "\u202e", "\u001b[31m", "\r", "9999999999999999999999", "-0", "1e400", "NaN", "~", "null", "true", "yes", "on",
    ];

    private static int Iterations => 60 * (int.TryParse(Environment.GetEnvironmentVariable("ORDO_TORTURE_SCALE"), out var n) && n > 0 ? n : 1);

    [Fact]
    public async Task MutatedDefinitionsAndInputs_AreValidOrInputErrors_NeverInternalErrors()
    {
        var seed = int.TryParse(Environment.GetEnvironmentVariable("ORDO_TORTURE_SEED"), out var s) ? s : Environment.TickCount;
        var random = new Random(seed);
        using var w = Workspace.Create();
        for (var i = 0; i < Iterations; i++)
        {
            var sample = Samples[random.Next(Samples.Length)];
            var dir = w.PathOf($"case{i}");
            CopyDirectory(TestPaths.Sample(sample), dir);
            var files = Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
                .Where(f => f.EndsWith(".yaml", StringComparison.Ordinal) || f.EndsWith(".json", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
            var workflow = Directory.EnumerateFiles(dir, "*.yaml").Order(StringComparer.Ordinal)
                .First(f => !Path.GetFileName(f).StartsWith("ordo", StringComparison.Ordinal) && File.ReadAllText(f).Contains("\nworkflow:", StringComparison.Ordinal));
            var target = files[random.Next(files.Count)];
            var original = await File.ReadAllBytesAsync(target);
            await File.WriteAllBytesAsync(target, Mutate(original, random));
            var input = Path.Combine(dir, "input.json");
            string[] args = File.Exists(input) ? ["validate", workflow, "--input", input] : ["validate", workflow];

            var allocated = GC.GetTotalAllocatedBytes();
            var result = await CliRunner.RunAsync(args).WaitAsync(TimeSpan.FromSeconds(60));
            var used = GC.GetTotalAllocatedBytes() - allocated;
            var what = $"seed {seed}, case {i}: {Path.GetRelativePath(dir, target)} of {sample} (kept in {dir})\n{result}";
            Assert.True(result.ExitCode is 0 or 2, what);
            Assert.True(result.ExitCode == 0 || result.Err.Contains("ordo: ", StringComparison.Ordinal), what);
            Assert.True(used < 2L * 1024 * 1024 * 1024, $"allocated {used / (1024 * 1024)} MB: {what}");
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task TheNastiestMutations_InAProcessWithASmallHeap_EndAsInputErrors()
    {
        // The mutations that build deep or self-referential structures, on the real binary with its heap capped.
        using var w = Workspace.Create();
        CopyDirectory(TestPaths.Sample("invoice-reconciliation"), w.PathOf("s"));
        var workflow = w.PathOf("s/reconcile.yaml");
        var text = await File.ReadAllTextAsync(workflow);
        string[] variants =
        [
            text + "\nx: &a [" + string.Concat(Enumerable.Repeat("*a, ", 50)) + "]\n",
            text + "\ny: " + new string('{', 5000) + new string('}', 5000) + "\n",
            text.Replace("steps:", "steps: &s\n  - *s\n", StringComparison.Ordinal),
            text + "\nz: \"" + new string('x', 3_000_000) + "\"\n",
        ];
        foreach (var (variant, i) in variants.Select((v, i) => (v, i)))
        {
            await File.WriteAllTextAsync(workflow, variant);
            using var p = OrdoProcess.Start(new Dictionary<string, string> { ["DOTNET_GCHeapHardLimit"] = "0x20000000" }, w.Root, "validate", workflow);
            var code = await p.WaitForExitAsync(TimeSpan.FromSeconds(90));
            Assert.True(code == 2, $"variant {i}: exit {code}\n{p.Err}");
        }
    }

    private static byte[] Mutate(byte[] original, Random random)
    {
        var text = new StringBuilder(Encoding.UTF8.GetString(original));
        var edits = 1 + random.Next(4);
        for (var e = 0; e < edits; e++)
        {
            var at = text.Length == 0 ? 0 : random.Next(text.Length);
            switch (random.Next(7))
            {
                case 0:
                    text.Insert(at, Fragments[random.Next(Fragments.Length)]);
                    break;
                case 1:
                    text.Remove(at, Math.Min(text.Length - at, 1 + random.Next(20)));
                    break;
                case 2:
                    // Duplicate a line somewhere else.
                    var lines = text.ToString().Split('\n');
                    var line = lines[random.Next(lines.Length)];
                    text.Insert(at, "\n" + line + "\n");
                    break;
                case 3:
                    text.Insert(at, new string(random.Next(2) == 0 ? '[' : '{', 1 + random.Next(80)));
                    break;
                case 4:
                    text.Length = at;
                    break;
                case 5:
                    text.Insert(at, new string('x', random.Next(100_000)));
                    break;
                default:
                    if (text.Length > 0) text[at] = (char)random.Next(0x20, 0x7f);
                    break;
            }
        }

        var bytes = Encoding.UTF8.GetBytes(text.ToString());
        if (random.Next(10) == 0 && bytes.Length > 0)
        {
            // Now and then, bytes that are not UTF-8 at all.
            bytes[random.Next(bytes.Length)] = (byte)(0x80 + random.Next(0x80));
        }

        return bytes;
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var dir in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
        {
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, dir)));
        }

        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            File.Copy(file, Path.Combine(to, Path.GetRelativePath(from, file)));
        }
    }
}
