using System.Xml.Linq;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Commands;

/// <summary><c>ordo graph</c>, run as the real executable: each format, <c>--out</c>, and <c>--job</c> with the path a job took.</summary>
public sealed class GraphCommandTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    private static async Task<CliResult> OrdoAsync(Workspace w, int exitCode, params string[] args)
    {
        var r = await OrdoProcess.RunAsync(w.Root, Patience, args);
        Assert.True(r.ExitCode == exitCode, $"ordo {string.Join(' ', args)}: expected exit code {exitCode}\n{r}");
        return r;
    }

    [Fact]
    public async Task Graph_Sample_IsMermaidByDefault_DotOnAsking_AndSvgIntoAFile()
    {
        using var w = Workspace.WithSample();

        var mermaid = await OrdoAsync(w, 0, "graph", "sample/reconcile.yaml");
        Assert.StartsWith("flowchart TD", mermaid.Out, StringComparison.Ordinal);
        Assert.Contains("reconcile<br/>transform → match_report", mermaid.Out, StringComparison.Ordinal);
        Assert.Contains("-->|\"when artifacts.match_report.exceptions.length #gt; 0\"|", mermaid.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("status:", mermaid.Out, StringComparison.Ordinal);

        var dot = await OrdoAsync(w, 0, "graph", "sample/reconcile.yaml", "--format", "dot");
        Assert.StartsWith("digraph \"invoice-reconciliation@1\" {", dot.Out, StringComparison.Ordinal);
        Assert.Contains("label=\"when artifacts.match_report.exceptions.length > 0\"", dot.Out, StringComparison.Ordinal);

        var svg = await OrdoAsync(w, 0, "graph", "sample/reconcile.yaml", "--format", "svg", "--out", "graph.svg");
        Assert.Equal("wrote graph.svg", svg.Out.Trim());
        var root = XDocument.Load(w.PathOf("graph.svg")).Root!;
        Assert.Equal(Svg + "svg", root.Name);
        Assert.Equal(["extract", "lookup", "reconcile", "flag", "post"], root.Descendants(Svg + "g").Select(g => (string?)g.Attribute("data-step-id")).OfType<string>());
        Assert.False(File.Exists(w.Db), "drawing a workflow creates no database");
    }

    [Fact]
    public async Task Graph_WithAJob_DrawsThePathItTook_AndEachStepsStatus_InEveryFormat()
    {
        using var w = Workspace.WithSample();
        var run = await CliRunner.RunExpectingAsync(0, SampleJob.Args(w, "run"));
        var job = SampleJob.JobIdFromRunOutput(run);

        var mermaid = await OrdoAsync(w, 0, "graph", SampleJob.Workflow(w), "--job", job, "--db", w.Db);
        Assert.Contains($"job {job} (completed)", mermaid.Out, StringComparison.Ordinal);
        // The sample's scripted extractor answers wrongly on the first attempt: the retry shows.
        Assert.Contains("extract<br/>agent extractor@2<br/>→ invoice_lines<br/>retry ≤ 3 attempts<br/>status: succeeded · 2 attempts", mermaid.Out, StringComparison.Ordinal);
        Assert.Contains("==>", mermaid.Out, StringComparison.Ordinal);
        Assert.Contains("end<br/>completed", mermaid.Out, StringComparison.Ordinal);

        var dot = await OrdoAsync(w, 0, "graph", SampleJob.Workflow(w), "--job", job, "--db", w.Db, "--format", "dot");
        Assert.Contains("class=\"edge e-entry taken\"", dot.Out, StringComparison.Ordinal);

        await OrdoAsync(w, 0, "graph", SampleJob.Workflow(w), "--job", job, "--db", w.Db, "--format", "svg", "--out", "job.svg");
        var root = XDocument.Load(w.PathOf("job.svg")).Root!;
        Assert.Equal(job, (string?)root.Attribute("data-job-id"));
        Assert.Equal("completed", (string?)root.Attribute("data-job-status"));
        var steps = root.Descendants(Svg + "g").Where(g => g.Attribute("data-step-id") is not null).ToDictionary(g => (string)g.Attribute("data-step-id")!, g => (string?)g.Attribute("data-status"));
        Assert.Equal("succeeded", steps["extract"]);
        Assert.Equal("succeeded", steps["post"]);
        // The sample's input has an exception, or it has none: exactly one of reconcile's two routes was taken.
        var fromReconcile = root.Descendants(Svg + "g").Where(g => (string?)g.Attribute("data-from") == "reconcile").ToList();
        Assert.Equal(2, fromReconcile.Count);
        Assert.Single(fromReconcile, g => ((string?)g.Attribute("class"))!.Contains(" taken", StringComparison.Ordinal));
        Assert.Equal(steps["flag"] == "succeeded" ? "flag" : "post",
            (string?)fromReconcile.Single(g => ((string?)g.Attribute("class"))!.Contains(" taken", StringComparison.Ordinal)).Attribute("data-to"));
    }

    [Fact]
    public async Task Graph_JobOfAnotherWorkflow_IsRefused_WithExit2()
    {
        using var w = Workspace.WithSample();
        var run = await CliRunner.RunExpectingAsync(0, SampleJob.Args(w, "run"));
        var job = SampleJob.JobIdFromRunOutput(run);
        var other = w.Write("other.yaml", "ordo: 1\nworkflow: other\nversion: 1\nsteps:\n  - { id: a, transform: { set: { x: 1 } } }\n");

        var r = await OrdoAsync(w, 2, "graph", other, "--job", job, "--db", w.Db);
        Assert.Contains($"job {job} is a job of workflow invoice-reconciliation@1, not of other@1", r.Err, StringComparison.Ordinal);
        Assert.Empty(r.Out);
    }

    [Fact]
    public async Task Graph_BadArguments_AreInputErrors()
    {
        using var w = Workspace.WithSample();
        var format = await CliRunner.RunExpectingAsync(2, "graph", SampleJob.Workflow(w), "--format", "png");
        Assert.Contains("'png' is not a graph format (mermaid, dot or svg)", format.Err, StringComparison.Ordinal);
        var noDb = await CliRunner.RunExpectingAsync(2, "graph", SampleJob.Workflow(w), "--job", "0123456789abcdef0123456789abcdef", "--db", w.Db);
        Assert.Contains("there is no Ordo database", noDb.Err, StringComparison.Ordinal);
        await CliRunner.RunExpectingAsync(2, "graph", w.PathOf("missing.yaml"));
    }
}
