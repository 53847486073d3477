namespace Ordo.Cli.Tests.TestSupport;

/// <summary>The invoice-reconciliation sample in a workspace, with the arguments that run it on the workspace's database.</summary>
internal static class SampleJob
{
    public static string Workflow(Workspace w) => w.PathOf("sample/reconcile.yaml");

    public static string Input(Workspace w) => w.PathOf("sample/input.json");

    /// <summary><c>COMMAND sample/reconcile.yaml --input sample/input.json --db DB EXTRA...</c></summary>
    public static string[] Args(Workspace w, string command, params string[] extra)
        => [command, Workflow(w), "--input", Input(w), "--db", w.Db, .. extra];

    /// <summary>A copy of <paramref name="args"/> with the argument at <paramref name="index"/> replaced.</summary>
    public static string[] With(this string[] args, int index, string value)
    {
        var copy = args.ToArray();
        copy[index] = value;
        return copy;
    }

    /// <summary>The job id in the first line of <c>ordo run</c>'s human output (<c>ordo: running job ID (...)</c>).</summary>
    public static string JobIdFromRunOutput(CliResult result)
    {
        var first = result.OutLines.FirstOrDefault(l => l.StartsWith("ordo: running job ", StringComparison.Ordinal))
            ?? throw new InvalidOperationException("no 'running job' line\n" + result);
        return first["ordo: running job ".Length..].Split(' ')[0];
    }
}
