using System.Text.RegularExpressions;
using Ordo.Cli.Tests.TestSupport;
using Ordo.Workflows;

namespace Ordo.Cli.Tests.Samples;

/// <summary>
/// Every YAML example in docs/workflows.md, docs/governance.md and docs/models.md is loaded the way Ordo would load it: a whole
/// workflow as a workflow, an <c>ordo.yaml</c> as the project configuration, a tools, policies or fixtures file as
/// one, and an excerpt (artifacts, agents, constraints, a retry, steps, a single tool) inside a small project that
/// defines what it refers to. Code agent types the examples name are taken as registered. (docs/patterns.md has its
/// own test: its blocks are excerpts of the samples.)
/// </summary>
public sealed partial class DocsYamlTests
{
    private static readonly string[] Pages = ["workflows.md", "governance.md", "models.md"];

    public static TheoryData<string, int> Blocks()
    {
        var data = new TheoryData<string, int>();
        foreach (var page in Pages)
        {
            for (var i = 0; i < YamlBlocks(page).Count; i++) data.Add(page, i);
        }

        return data;
    }

    [Fact]
    public void ThePagesHaveYamlExamples()
    {
        foreach (var page in Pages) Assert.NotEmpty(YamlBlocks(page));
    }

    [Theory]
    [MemberData(nameof(Blocks))]
    public async Task EveryYamlExample_LoadsAsWhatItIs(string page, int index)
    {
        var block = YamlBlocks(page)[index];
        using var w = Workspace.Create();
        WriteSupportProject(w);
        var first = block.Split('\n').Select(l => l.Trim()).First(l => l.Length > 0 && !l.StartsWith('#'));
        var key = first.StartsWith("- ", StringComparison.Ordinal) ? "-" : first.Split(':')[0];
        string workflow = w.PathOf("host.yaml"), config = w.PathOf("ordo.yaml");
        switch (key)
        {
            case "ordo":
                w.Write("host.yaml", block);
                break;
            case "storage" or "models":
                // An ordo.yaml: everything it names exists in the support project.
                config = w.Write("doc-ordo.yaml", block);
                w.Write("host.yaml", MinimalWorkflow);
                break;
            case "tools":
                w.Write("doc-tools.yaml", block);
                w.Write("ordo.yaml", SupportConfig.Replace("tools: [support-tools.yaml]", "tools: [doc-tools.yaml]", StringComparison.Ordinal));
                w.Write("host.yaml", MinimalWorkflow);
                break;
            case "policy":
                w.Write("doc-policies.yaml", block);
                w.Write("ordo.yaml", SupportConfig + "policies: [doc-policies.yaml]\n");
                w.Write("host.yaml", MinimalWorkflow);
                break;
            case "responses":
                w.Write("doc-fixtures.yaml", block);
                w.Write("ordo.yaml", SupportConfig.Replace("fixtures: support-fixtures.yaml", "fixtures: doc-fixtures.yaml", StringComparison.Ordinal));
                w.Write("host.yaml", MinimalWorkflow);
                break;
            case "-":
                w.Write("host.yaml", HostWorkflow("", "", "", Indent(block, 2)));
                break;
            case "retry":
                w.Write("host.yaml", HostWorkflow("", "", "", $"  - id: extract\n    agent: extractor\n{Indent(block, 4)}\n"));
                break;
            case "artifacts":
                w.Write("host.yaml", HostWorkflow(block, "", "", "  - { id: post, transform: { set: { done: true } } }\n"));
                break;
            case "agents":
                w.Write("host.yaml", HostWorkflow(DocArtifacts, block, "", "  - { id: post, transform: { set: { done: true } } }\n"));
                break;
            case "constraints":
                w.Write("host.yaml", HostWorkflow("", "", block, "  - { id: post, transform: { set: { done: true } } }\n"));
                break;
            default:
                // A single tool definition, as it stands under tools:.
                Assert.Contains("kind:", block, StringComparison.Ordinal);
                w.Write("doc-tools.yaml", "tools:\n" + Indent(block, 2));
                w.Write("ordo.yaml", SupportConfig.Replace("tools: [support-tools.yaml]", "tools: [support-tools.yaml, doc-tools.yaml]", StringComparison.Ordinal));
                w.Write("host.yaml", MinimalWorkflow);
                break;
        }

        var options = new WorkflowLoadOptions { CodeAgentExists = _ => true, CodeToolExists = _ => true };
        var loaded = await WorkflowLoader.LoadFileAsync(workflow, config, options);
        Assert.NotNull(loaded);
    }

    /// <summary>The artifacts the agents example names as outputs.</summary>
    private const string DocArtifacts = """
        artifacts:
          finding: { schema: { type: object, required: [amount] } }
          invoice_lines: { schema: { $ref: schemas/invoice_lines.json } }
          fx_rates: { schema: { type: object } }
        """;

    private const string MinimalWorkflow = "ordo: 1\nworkflow: host\nversion: 1\nsteps:\n  - { id: only, transform: { set: { x: 1 } } }\n";

    private const string SupportConfig = """
        models:
          fast: { provider: scripted, fixtures: support-fixtures.yaml }
          standard: { provider: scripted, fixtures: support-fixtures.yaml }
        tools: [support-tools.yaml]
        prompts: prompts/
        connections:
          ledger: { sqlite: data/ledger.db, init: data/ledger.sql }

        """;

    /// <summary>A workflow that defines what the excerpts refer to (artifacts, agents, a step to go to), with the excerpt in its place.</summary>
    private static string HostWorkflow(string artifacts, string agents, string constraints, string steps)
    {
        var text = new System.Text.StringBuilder("ordo: 1\nworkflow: host\nversion: 1\n");
        if (constraints.Length > 0) text.Append(constraints.TrimEnd()).Append('\n');
        text.Append(artifacts.Length > 0 ? artifacts.TrimEnd() + "\n" : """
            artifacts:
              finding: { schema: { type: object, required: [amount] } }
              invoice_lines: { schema: { $ref: schemas/invoice_lines.json } }
              fx_rates: { schema: { type: object } }

            """);
        text.Append(agents.Length > 0 ? agents.TrimEnd() + "\n" : """
            agents:
              extractor: { kind: llm, tier: fast, prompt: extract }
              verifier: { kind: llm, tier: fast }

            """);
        text.Append("steps:\n").Append(steps);
        if (!steps.Contains("id: post", StringComparison.Ordinal)) text.Append("  - { id: post, transform: { set: { posted: true } } }\n");
        return text.ToString();
    }

    private static void WriteSupportProject(Workspace w)
    {
        w.Write("ordo.yaml", SupportConfig);
        w.Write("support-fixtures.yaml", "responses:\n  - { agent: extractor, content: '{\"lines\": []}' }\n");
        w.Write("fixtures/responses.yaml", "responses:\n  - { agent: extractor, content: '{\"lines\": []}' }\n");
        w.Write("support-tools.yaml", """
            tools:
              ledger.query: { kind: sql, connection: ledger, query: "SELECT amount FROM invoices WHERE id = @invoice_id", effect: read }
              ledger.post: { kind: sql, connection: ledger, query: "INSERT INTO journal(lines) VALUES (@lines)", effect: irreversible }
            """);
        w.Write("tools.yaml", "tools:\n  ledger.query: { kind: sql, connection: ledger, query: \"SELECT 1\", effect: read }\n");
        w.Write("prompts/extract.md", "---\nversion: 1\n---\nExtract the invoice lines.\n");
        w.Write("schemas/finding.json", """{ "type": "object", "required": ["amount"] }""");
        w.Write("schemas/invoice_lines.json", """{ "type": "object", "required": ["lines"] }""");
        w.Write("data/ledger.sql", "CREATE TABLE invoices(id TEXT, amount REAL);\n");
    }

    private static string Indent(string block, int spaces)
        => string.Join("\n", block.TrimEnd().Split('\n').Select(l => l.Length == 0 ? l : new string(' ', spaces) + l)) + "\n";

    private static List<string> YamlBlocks(string page)
        => [.. YamlFence().Matches(File.ReadAllText(Path.Combine(TestPaths.RepositoryRoot, "docs", page)).ReplaceLineEndings("\n")).Select(m => m.Groups[1].Value)];

    [GeneratedRegex(@"```yaml\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex YamlFence();
}
