using System.Text.Json;

namespace Ordo.Cli.Tests.TestSupport;

/// <summary>What one <c>ordo</c> invocation printed and returned.</summary>
internal sealed record CliResult(int ExitCode, string Out, string Err)
{
    /// <summary>The non-empty lines of stdout.</summary>
    public IReadOnlyList<string> OutLines => Out.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Parses stdout as exactly one JSON value (fails on anything before or after it).</summary>
    public JsonElement Json()
    {
        using var doc = JsonDocument.Parse(Out);
        return doc.RootElement.Clone();
    }

    /// <summary>Parses each stdout line as one JSON value.</summary>
    public IReadOnlyList<JsonElement> JsonLines() => OutLines.Select(l =>
    {
        using var doc = JsonDocument.Parse(l);
        return doc.RootElement.Clone();
    }).ToList();

    public override string ToString() => $"exit code {ExitCode}\n--- stdout\n{Out}\n--- stderr\n{Err}";
}
