using System.Xml.Linq;
using Ordo.Graphs;

namespace Ordo.Tests.Graphs;

/// <summary>The Mermaid, DOT and SVG drawings: every node and edge, the job's statuses in words, escaping, and a layout without overlaps.</summary>
public sealed class GraphRendererTests
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    private const string Hostile = """
        ordo: 1
        workflow: hostile
        version: 1
        agents: { a: { kind: code, type: T.A } }
        steps:
          - id: s
            agent: a
            next:
              - { when: "input.y != \"#quot;|]]\" && input.x == '</text><script>alert(1)</script>'", to: t }
          - { id: t, agent: a }
        """;

    public static TheoryData<string> Samples => [.. GraphWorkflows.Samples];

    [Theory]
    [MemberData(nameof(Samples))]
    public async Task Sample_EachFormat_DrawsEveryStepAndEdge(string sample)
    {
        var g = WorkflowGraph.From(await GraphWorkflows.SampleAsync(sample));

        var mermaid = GraphRenderer.Render(g, GraphFormat.Mermaid);
        Assert.StartsWith("flowchart TD\n", mermaid, StringComparison.Ordinal);
        Assert.Equal(g.Edges.Count, mermaid.Split('\n').Count(l => l.Contains("-->", StringComparison.Ordinal) || l.Contains("-.->", StringComparison.Ordinal)));

        var dot = GraphRenderer.Render(g, GraphFormat.Dot);
        Assert.StartsWith("digraph ", dot, StringComparison.Ordinal);
        Assert.Equal(g.Edges.Count, dot.Split('\n').Count(l => l.Contains(" -> ", StringComparison.Ordinal)));

        var svg = XDocument.Parse(GraphRenderer.Render(g, GraphFormat.Svg)).Root!;
        Assert.Equal(g.Nodes.Count(n => n.IsStep), svg.Descendants(Svg + "g").Count(e => e.Attribute("data-step-id") is not null));
        Assert.Equal(g.Edges.Count, svg.Descendants(Svg + "g").Count(e => ((string?)e.Attribute("class"))?.StartsWith("edge ", StringComparison.Ordinal) == true));
        AssertNoOverlap(svg);
    }

    [Fact]
    public async Task Svg_IsAccessible_SelfContained_AndCarriesTheTestId()
    {
        var g = WorkflowGraph.From(await GraphWorkflows.LoadAsync(GraphWorkflows.EveryPattern, ("child.yaml", GraphWorkflows.Child)));
        var text = GraphRenderer.Render(g, GraphFormat.Svg);
        var svg = XDocument.Parse(text).Root!;

        Assert.Equal(Svg + "svg", svg.Name);
        Assert.Equal("img", (string?)svg.Attribute("role"));
        Assert.Equal("job-graph", (string?)svg.Attribute("data-testid"));
        Assert.Equal("Graph of workflow every-pattern@1", svg.Element(Svg + "title")!.Value);
        Assert.Contains("first (agent)", svg.Element(Svg + "desc")!.Value, StringComparison.Ordinal);
        Assert.Empty(svg.Descendants(Svg + "script"));
        Assert.Empty(svg.Descendants(Svg + "foreignObject"));
        Assert.DoesNotContain(svg.DescendantsAndSelf().Attributes(), a => a.Name.LocalName.StartsWith("on", StringComparison.Ordinal));
        // The only URL is the SVG namespace; markers are referenced inside the document.
        Assert.Equal(1, CountOf(text, "http"));
        Assert.Contains("stroke-dasharray", text, StringComparison.Ordinal);
        AssertNoOverlap(svg);
    }

    [Fact]
    public async Task Svg_WithAJob_ShowsEachStepsStatusInWordsAndAsAClass_AndThePathTaken()
    {
        await using var h = JobGraphOverlayTests.Harness();
        var (g, o, _) = await JobGraphOverlayTests.RunAsync(h, """{"go": "fan", "items": [1, 2]}""");
        var svg = XDocument.Parse(GraphRenderer.Render(g, GraphFormat.Svg, o)).Root!;

        var item = svg.Descendants(Svg + "g").Single(e => (string?)e.Attribute("data-step-id") == "item");
        Assert.Contains("s-succeeded", (string?)item.Attribute("class"), StringComparison.Ordinal);
        Assert.Equal("succeeded", (string?)item.Attribute("data-status"));
        Assert.Contains(item.Elements(Svg + "text"), t => t.Value == "status: succeeded · 2 attempts · 2 runs");
        var skipped = svg.Descendants(Svg + "g").Single(e => (string?)e.Attribute("data-step-id") == "skipped");
        Assert.Contains(skipped.Elements(Svg + "text"), t => t.Value == "status: not run");
        Assert.Equal("completed", (string?)svg.Attribute("data-job-status"));
        var taken = svg.Descendants(Svg + "g").Where(e => ((string?)e.Attribute("class"))?.Contains(" taken", StringComparison.Ordinal) == true).ToList();
        Assert.Equal(g.Edges.Count(o.IsTaken), taken.Count);
        Assert.Contains(taken, e => (string?)e.Attribute("data-from") == "decide" && (string?)e.Attribute("data-to") == "fan");
        Assert.DoesNotContain(taken, e => (string?)e.Attribute("data-to") == "skipped");
    }

    [Fact]
    public async Task MermaidAndDot_WithAJob_MarkThePathAndTheStatuses()
    {
        await using var h = JobGraphOverlayTests.Harness();
        var (g, o, _) = await JobGraphOverlayTests.RunAsync(h, """{"go": "fan", "items": [1]}""");

        var mermaid = GraphRenderer.Render(g, GraphFormat.Mermaid, o);
        Assert.Contains("==>", mermaid, StringComparison.Ordinal);
        Assert.Contains("status: succeeded · 1 attempt", mermaid, StringComparison.Ordinal);
        Assert.Contains("classDef not_run", mermaid, StringComparison.Ordinal);
        Assert.Contains("linkStyle ", mermaid, StringComparison.Ordinal);

        var dot = GraphRenderer.Render(g, GraphFormat.Dot, o);
        Assert.Contains("s-succeeded", dot, StringComparison.Ordinal);
        Assert.Contains("penwidth=2.5", dot, StringComparison.Ordinal);
        Assert.Contains("status: not run", dot, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HostileConditionText_IsEscaped_InEveryFormat()
    {
        var g = WorkflowGraph.From(await GraphWorkflows.LoadAsync(Hostile));

        var svgText = GraphRenderer.Render(g, GraphFormat.Svg);
        var svg = XDocument.Parse(svgText).Root!;
        Assert.Empty(svg.Descendants(Svg + "script"));
        Assert.Contains(svg.Descendants(Svg + "title"), t => t.Value.Contains("<script>alert(1)</script>", StringComparison.Ordinal));

        var mermaid = GraphRenderer.Render(g, GraphFormat.Mermaid);
        var edge = mermaid.Split('\n').Single(l => l.Contains("-->|\"when ", StringComparison.Ordinal));
        Assert.DoesNotContain("<", edge, StringComparison.Ordinal);
        Assert.Equal(2, CountOf(edge, "\""));
        Assert.Contains("#lt;/text#gt;", edge, StringComparison.Ordinal);
        Assert.Contains("#35;quot;#124;]]", edge, StringComparison.Ordinal);

        var dot = GraphRenderer.Render(g, GraphFormat.Dot);
        Assert.Contains("input.y != \\\"#quot;|]]\\\"", dot, StringComparison.Ordinal);
    }

    [Fact]
    public void TryParseFormat_KnowsTheThreeFormats()
    {
        Assert.True(GraphRenderer.TryParseFormat("SVG", out var svg) && svg == GraphFormat.Svg);
        Assert.True(GraphRenderer.TryParseFormat("dot", out var dot) && dot == GraphFormat.Dot);
        Assert.True(GraphRenderer.TryParseFormat("mermaid", out var m) && m == GraphFormat.Mermaid);
        Assert.False(GraphRenderer.TryParseFormat("png", out _));
        Assert.Equal("image/svg+xml", GraphRenderer.MediaType(GraphFormat.Svg));
        Assert.Equal("text/plain", GraphRenderer.MediaType(GraphFormat.Dot));
    }

    private static int CountOf(string text, string part) => (text.Length - text.Replace(part, "", StringComparison.Ordinal).Length) / part.Length;

    /// <summary>No two node boxes overlap, and every box lies inside the image.</summary>
    private static void AssertNoOverlap(XElement svg)
    {
        var width = double.Parse((string)svg.Attribute("width")!, System.Globalization.CultureInfo.InvariantCulture);
        var height = double.Parse((string)svg.Attribute("height")!, System.Globalization.CultureInfo.InvariantCulture);
        var boxes = svg.Descendants(Svg + "g").Where(e => ((string?)e.Attribute("class"))?.StartsWith("node ", StringComparison.Ordinal) == true).Select(e =>
        {
            var t = ((string)e.Attribute("transform")!)["translate(".Length..^1].Split(' ').Select(v => double.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            var rect = e.Element(Svg + "rect")!;
            double D(string a) => double.Parse((string)rect.Attribute(a)!, System.Globalization.CultureInfo.InvariantCulture);
            return (Id: (string?)e.Attribute("data-step-id") ?? (string?)e.Attribute("data-node"), X: t[0], Y: t[1], W: D("width"), H: D("height"));
        }).ToList();
        foreach (var a in boxes)
        {
            Assert.True(a.X >= 0 && a.Y >= 0 && a.X + a.W <= width && a.Y + a.H <= height, $"{a.Id} lies outside the image");
            foreach (var b in boxes.Where(b => !ReferenceEquals(a.Id, b.Id) && a.Id != b.Id))
            {
                Assert.False(a.X < b.X + b.W && b.X < a.X + a.W && a.Y < b.Y + b.H && b.Y < a.Y + a.H, $"{a.Id} overlaps {b.Id}");
            }
        }
    }
}
