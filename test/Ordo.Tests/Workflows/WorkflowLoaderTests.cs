using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Ordo.Expressions;
using Ordo.Workflows;

namespace Ordo.Tests.Workflows;

/// <summary>
/// Tests of <see cref="WorkflowLoader"/> against the documented file formats (docs: WORKFLOW-FORMAT.md).
/// Split over several files by topic: header and agents here, then steps, project files and errors.
/// </summary>
public sealed partial class WorkflowLoaderTests : IDisposable
{
    private const string ApiKeyHash = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    private static readonly ExpressionEvaluator Evaluator = new();

    private readonly TempWorkspace _ws = new();

    public void Dispose() => _ws.Dispose();

    /// <summary>The project of the format document: models, tools, prompts, fixtures, schemas, connections.</summary>
    private void WriteProject(string? ordoYaml = null, string? toolsYaml = null)
    {
        _ws.Write("ordo.yaml", ordoYaml ?? $$"""
            storage: { sqlite: ordo.db, durability: full }
            models:
              fast:     { provider: openai, model: gpt-4o-mini, endpoint: "http://127.0.0.1:9/v1", api_key: "${secret:OPENAI_API_KEY}", price: { input_per_1k: 0.00015, output_per_1k: 0.0006 } }
              standard: { provider: ollama, model: llama3.1, endpoint: "http://127.0.0.1:11434" }
              high:     { provider: scripted, fixtures: fixtures/responses.yaml }
              fallback: { high: standard }
            tools: [tools.yaml]
            prompts: prompts/
            connections: { ledger: { sqlite: data/ledger.db, init: data/ledger.sql } }
            mcp_servers: { docs: { command: ["node", "docs-server.js"] }, web: { url: "http://127.0.0.1:7000/mcp" } }
            plugins: [bin/Acme.Agents.dll]
            tenants:
              acme: { api_keys: ["{{ApiKeyHash}}"], roles: { "alice": [submitter], "bob": [approver], "carol": [approver, operator] },
                      quota: { concurrent_jobs: 50, jobs_per_minute: 600 } }
            workflows: [flows]
            """);
        _ws.Write("tools.yaml", toolsYaml ?? """
            tools:
              ledger.query:
                kind: sql
                connection: ledger
                query: "SELECT vendor_id, amount FROM invoices WHERE id = @invoice_id"
                effect: read
                args: { type: object, required: [invoice_id], properties: { invoice_id: { type: string, pattern: "^INV-[0-9]+$" } } }
                cache: 10m
              ledger.post:
                kind: sql
                connection: ledger
                query: "INSERT OR IGNORE INTO journal(idempotency_key, lines) VALUES (@idempotency_key, @lines)"
                effect: irreversible
                args: { type: object, required: [lines], properties: { lines: { type: array } } }
              crm.update:
                kind: http
                method: POST
                url: "http://127.0.0.1:8082/customers/{customer_id}"
                headers: { Authorization: "Bearer ${secret:CRM_TOKEN}" }
                effect: write
                args: { $ref: schemas/crm_update.json }
                result: { $ref: schemas/crm_result.json }
              docs.search: { kind: mcp, server: docs, tool: search, effect: read }
            defaults: { timeout: 10s, retry: { max_attempts: 3, backoff: 200ms }, circuit_breaker: { failure_ratio: 0.5, min_calls: 10, break: 30s } }
            """);
        _ws.Write("schemas/crm_update.json", """{ "type": "object", "required": ["customer_id"], "properties": { "customer_id": { "type": "string" } } }""");
        _ws.Write("schemas/crm_result.json", """{ "type": "object", "properties": { "ok": { "type": "boolean" } } }""");
        _ws.Write("schemas/invoice_lines.json", """{ "type": "object", "required": ["lines"], "properties": { "lines": { "type": "array" } } }""");
        _ws.Write("schemas/finding.json", """{ "type": "object", "required": ["amount"], "properties": { "amount": { "type": "number" }, "exceptions": { "type": "array" } } }""");
        _ws.Write("data/ledger.sql", "CREATE TABLE IF NOT EXISTS invoices(id TEXT PRIMARY KEY, vendor_id TEXT, amount REAL);");
        _ws.Write("fixtures/responses.yaml", """
            responses:
              - { agent: extractor, attempt: 1, content: '{"lines": []}' , usage: { input_tokens: 800, output_tokens: 40 } }
              - { agent: extractor, content: '{"lines": [{"sku": "A-1", "amount": 12.5}]}' }
              - { agent: reviewer, when: "input.invoices.length > 3", content: { amount: 12.5, confidence: 0.9 } }
              - { agent: reviewer, error: timeout }
            """);
        _ws.Write("prompts/extract.md", ExtractPrompt);
        _ws.Write("prompts/review.md", "Review ${ input.invoices.length } invoices.");
    }

    private const string ExtractPrompt = "---\nversion: 2\ndescription: extraction\n---\nYou extract ${ input.invoices.length } invoice(s).\n";

    /// <summary>The workflow of the format document, with policies left out.</summary>
    private const string FullWorkflow = """
        ordo: 1
        workflow: invoice-reconciliation
        version: 3
        description: Reconcile supplier invoices against the ledger and post journals.
        input:
          type: object
          required: [invoices]
          properties: { invoices: { type: array, items: { type: object } } }
        constraints: { deadline: 10m, max_cost: 2.00, max_tokens: 200000, max_tool_calls: 40, no_web: true }
        artifacts:
          invoice_lines: { schema: schemas/invoice_lines.json }
          finding:
            schema: { $ref: schemas/finding.json }
            evidence: required
            verify: { min_confidence: 0.75 }
            authoritative: { amount: ledger.query }
        agents:
          extractor:   { kind: llm, version: 2, tier: fast, prompt: extract, output: invoice_lines, tools: [ledger.query] }
          reviewer:    { kind: llm, version: 1, tier: high, prompt: review, output: finding, critical: true }
          reconciler:  { kind: code, version: 4, type: "Acme.Agents.Reconciler", output: finding }
          fx:          { kind: http, version: 1, url: "http://127.0.0.1:8081/agents/fx", output: invoice_lines }
        steps:
          - id: extract
            agent: extractor
            input: { invoices: "${ input.invoices }" }
            retry: { max_attempts: 3, backoff: 2s, max_backoff: 30s, vary: [escalate_tier, require_citations] }
            timeout: 60s
            next: reconcile
          - id: reconcile
            agent: reconciler
            next:
              - { when: "artifacts.finding.exceptions.length > 0", to: approve }
              - { to: post }
          - id: approve
            approval: { role: approver, count: 2, expires: 24h, on_expire: fail, show: ["${ artifacts.finding }"] }
            next: post
          - id: post
            tool: ledger.post
            args: { lines: "${ artifacts.invoice_lines.lines }" }
            next: end
        """;

    /// <summary>A workflow around the given steps, with code agents a, b and c and a tool-free project.</summary>
    private static string Workflow(string steps, string? extra = null) => $$"""
        ordo: 1
        workflow: demo
        version: 1
        agents:
          a: { kind: code, type: Acme.A, output: result }
          b: { kind: code, type: Acme.B }
          c: { kind: code, type: Acme.C }
        {{extra ?? ""}}
        steps:
        {{steps}}
        """;

    private static (int Line, int Column) Locate(string text, string token, int occurrence = 1)
    {
        var lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        var seen = 0;
        for (var i = 0; i < lines.Length; i++)
        {
            var from = 0;
            int index;
            while ((index = lines[i].IndexOf(token, from, StringComparison.Ordinal)) >= 0)
            {
                if (++seen == occurrence)
                {
                    return (i + 1, index + 1);
                }

                from = index + 1;
            }
        }

        throw new ArgumentException($"'{token}' (occurrence {occurrence}) is not in the text");
    }

    /// <summary>Finds the one problem at <paramref name="path"/> whose message contains <paramref name="message"/>.</summary>
    private static ValidationProblem Problem(IReadOnlyList<ValidationProblem> problems, string path, string message)
    {
        var matches = problems.Where(p => p.Path == path && p.Message.Contains(message, StringComparison.Ordinal)).ToList();
        Assert.True(matches.Count == 1, $"expected one problem at '{path}' containing '{message}', found {matches.Count} in:\n{string.Join("\n", problems)}");
        return matches[0];
    }

    /// <summary>Checks that a problem names the file and points at <paramref name="token"/> in it.</summary>
    private void AssertAt(ValidationProblem problem, string file, string text, string token, int occurrence = 1)
    {
        Assert.NotNull(problem.File);
        Assert.Equal(_ws.PathOf(file), Path.GetFullPath(problem.File!));
        var (line, column) = Locate(text, token, occurrence);
        Assert.True((line, column) == (problem.Line, problem.Column), $"expected {file}:{line}:{column}, found {problem}");
    }

    private static JsonElement Eval(ValueTemplate? template, ExpressionScope? scope = null)
    {
        Assert.NotNull(template);
        return template!.Evaluate(Evaluator, scope ?? new ExpressionScope());
    }

    private static string Sha256(string text) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    [Fact]
    public async Task LoadFileAsync_TheDocumentedExample_Loads()
    {
        WriteProject();
        _ws.Write("wf.yaml", FullWorkflow);

        var wf = await _ws.LoadAsync();

        Assert.Equal("invoice-reconciliation", wf.Name);
        Assert.Equal(3, wf.Version);
        Assert.Equal("invoice-reconciliation@3", wf.Ref);
        Assert.Equal("Reconcile supplier invoices against the ledger and post journals.", wf.Description);
        Assert.Equal(["extract", "reconcile", "approve", "post"], wf.Steps.Select(s => s.Id));
        Assert.Equal(["agent", "agent", "approval", "tool"], wf.Steps.Select(s => s.Kind));
        Assert.Same(wf.Steps[0], wf.Entry);
        Assert.Same(wf.Steps[3], wf.GetStep("post"));
        Assert.Null(wf.FindStep("nope"));
        Assert.StartsWith("sha256:", wf.Hash, StringComparison.Ordinal);
        Assert.Equal(4, wf.Agents.Count);
        Assert.Equal(2, wf.Artifacts.Count);
        Assert.Equal(4, wf.Project.Tools.Count);
    }

    [Fact]
    public async Task LoadFileAsync_Header_ReadsInputSchemaAndConstraints()
    {
        WriteProject();
        _ws.Write("wf.yaml", FullWorkflow);

        var wf = await _ws.LoadAsync();

        Assert.NotNull(wf.InputSchema);
        Assert.Empty(wf.InputSchema!.Validate(TestJson("""{"invoices": [{}]}""")));
        Assert.NotEmpty(wf.InputSchema.Validate(TestJson("""{"invoices": 3}""")));
        Assert.NotEmpty(wf.InputSchema.Validate(TestJson("{}")));
        Assert.Equal(TimeSpan.FromMinutes(10), wf.Constraints.Deadline);
        Assert.Equal(2.00m, wf.Constraints.MaxCost);
        Assert.Equal(200000, wf.Constraints.MaxTokens);
        Assert.Equal(40, wf.Constraints.MaxToolCalls);
        Assert.True(wf.Constraints.Flags["no_web"]);
        Assert.Equal("""{"deadline":"10m","max_cost":2,"max_tokens":200000,"max_tool_calls":40,"no_web":true}""", wf.ConstraintsJson.GetRawText());
    }

    [Fact]
    public async Task LoadFileAsync_InputSchemaByRef_IsReadFromTheFile()
    {
        _ws.Write("schemas/input.json", """{ "type": "object", "required": ["id"], "properties": { "id": { "type": "string", "pattern": "^INV-[0-9]+$" } } }""");
        _ws.Write("wf.yaml", Workflow("  - { id: one, agent: a }", "input: { $ref: schemas/input.json }"));

        var wf = await _ws.LoadAsync();

        Assert.Empty(wf.InputSchema!.Validate(TestJson("""{"id": "INV-1"}""")));
        Assert.Contains(wf.InputSchema.Validate(TestJson("""{"id": "X"}""")), m => m.Contains("pattern", StringComparison.Ordinal));
        Assert.True(wf.Bundle!.Files.ContainsKey("schemas/input.json"));
    }

    [Fact]
    public async Task LoadFileAsync_InputSchemaInYaml_ByRef_IsRead()
    {
        _ws.Write("schemas/input.yaml", "type: object\nrequired: [n]\nproperties: { n: { type: integer } }\n");
        _ws.Write("wf.yaml", Workflow("  - { id: one, agent: a }", "input: { $ref: schemas/input.yaml }"));

        var wf = await _ws.LoadAsync();

        Assert.Empty(wf.InputSchema!.Validate(TestJson("""{"n": 1}""")));
        Assert.NotEmpty(wf.InputSchema.Validate(TestJson("""{"n": "one"}""")));
    }

    [Fact]
    public async Task LoadFileAsync_SchemaFiles_ResolveNestedReferencesRelativeToThemselves()
    {
        _ws.Write("schemas/invoice.json", """{ "type": "object", "required": ["lines"], "properties": { "lines": { "type": "array", "items": { "$ref": "parts/line.json" } } } }""");
        _ws.Write("schemas/parts/line.json", """{ "type": "object", "required": ["amount"], "properties": { "amount": { "type": "number" } } }""");
        _ws.Write("wf.yaml", Workflow("  - { id: one, agent: a }", "input: schemas/invoice.json\nartifacts: { result: { schema: { type: object, properties: { first: { $ref: schemas/parts/line.json } } } } }"));

        var wf = await _ws.LoadAsync();

        Assert.Empty(wf.InputSchema!.Validate(TestJson("""{"lines": [{"amount": 1}]}""")));
        Assert.NotEmpty(wf.InputSchema.Validate(TestJson("""{"lines": [{"amount": "one"}]}""")));
        Assert.NotEmpty(wf.Artifacts["result"].Schema!.Validate(TestJson("""{"first": {}}""")));
        Assert.True(wf.Bundle!.Files.ContainsKey("schemas/parts/line.json"));
    }

    [Fact]
    public async Task LoadFileAsync_WithoutOptionalHeaderKeys_UsesDefaults()
    {
        _ws.Write("wf.yaml", "workflow: tiny\nversion: 1\nagents: { a: { kind: code, type: A } }\nsteps:\n  - { id: only, agent: a }\n");

        var wf = await _ws.LoadAsync();

        Assert.Null(wf.Description);
        Assert.Null(wf.InputSchema);
        Assert.Same(JobConstraints.None, wf.Constraints);
        Assert.Empty(wf.Artifacts);
        Assert.Null(wf.Project.ConfigFile);
        Assert.Empty(wf.Steps[0].Next);
    }

    [Fact]
    public async Task LoadFileAsync_Artifacts_ReadSchemaEvidenceVerifyAndAuthoritative()
    {
        WriteProject();
        _ws.Write("wf.yaml", FullWorkflow);

        var wf = await _ws.LoadAsync();

        var lines = wf.Artifacts["invoice_lines"];
        Assert.NotNull(lines.Schema);
        Assert.False(lines.EvidenceRequired);
        Assert.Null(lines.MinConfidence);
        Assert.Empty(lines.Authoritative);
        Assert.NotEmpty(lines.Schema!.Validate(TestJson("{}")));

        var finding = wf.Artifacts["finding"];
        Assert.True(finding.EvidenceRequired);
        Assert.Equal(0.75, finding.MinConfidence);
        Assert.Equal("ledger.query", finding.Authoritative["amount"]);
        Assert.Empty(finding.Schema!.Validate(TestJson("""{"amount": 1.5}""")));
        Assert.NotEmpty(finding.Schema.Validate(TestJson("""{"amount": "x"}""")));
    }

    [Fact]
    public async Task LoadFileAsync_Agents_ReadEveryKind()
    {
        WriteProject();
        _ws.Write("wf.yaml", FullWorkflow);

        var wf = await _ws.LoadAsync();

        var extractor = wf.Agents["extractor"];
        Assert.Equal(AgentKind.Llm, extractor.Kind);
        Assert.Equal(2, extractor.Version);
        Assert.Equal("extractor@2", extractor.Ref);
        Assert.Equal("fast", extractor.Tier);
        Assert.Equal("invoice_lines", extractor.Output);
        Assert.Equal(["ledger.query"], extractor.Tools);
        Assert.False(extractor.Critical);

        var reviewer = wf.Agents["reviewer"];
        Assert.True(reviewer.Critical);
        Assert.Equal("high", reviewer.Tier);

        var reconciler = wf.Agents["reconciler"];
        Assert.Equal(AgentKind.Code, reconciler.Kind);
        Assert.Equal("Acme.Agents.Reconciler", reconciler.Type);
        Assert.Equal(4, reconciler.Version);
        Assert.Null(reconciler.Tier);

        var fx = wf.Agents["fx"];
        Assert.Equal(AgentKind.Http, fx.Kind);
        Assert.Equal("http://127.0.0.1:8081/agents/fx", fx.Url);
    }

    [Fact]
    public async Task LoadFileAsync_Prompt_ReadsVersionFrontMatterAndHashesTheWholeFile()
    {
        WriteProject();
        _ws.Write("wf.yaml", FullWorkflow);

        var wf = await _ws.LoadAsync();

        var prompt = wf.Agents["extractor"].Prompt!;
        Assert.Equal("extract", prompt.Name);
        Assert.Equal("2", prompt.Version);
        Assert.Equal(Sha256(ExtractPrompt), prompt.Hash);
        var text = prompt.Body.Render(Evaluator, new ExpressionScope { Input = TestJson("""{"invoices": [1, 2]}""") });
        Assert.Equal("You extract 2 invoice(s).\n", text);

        var review = wf.Agents["reviewer"].Prompt!;
        Assert.Null(review.Version);
        Assert.Equal(Sha256("Review ${ input.invoices.length } invoices."), review.Hash);
    }

    [Fact]
    public async Task LoadFileAsync_PromptChange_ChangesItsHashAndTheDefinitionHash()
    {
        WriteProject();
        _ws.Write("wf.yaml", FullWorkflow);
        var before = await _ws.LoadAsync();

        _ws.Write("prompts/extract.md", ExtractPrompt.Replace("You extract", "Extract", StringComparison.Ordinal));
        var after = await _ws.LoadAsync();

        Assert.NotEqual(before.Agents["extractor"].Prompt!.Hash, after.Agents["extractor"].Prompt!.Hash);
        Assert.NotEqual(before.Hash, after.Hash);
    }

    [Fact]
    public async Task LoadFileAsync_SameFiles_GiveTheSameHash()
    {
        WriteProject();
        _ws.Write("wf.yaml", FullWorkflow);

        var first = await _ws.LoadAsync();
        var second = await _ws.LoadAsync();

        Assert.Equal(first.Hash, second.Hash);
    }

    [Fact]
    public async Task LoadFileAsync_PromptsFolderDefaultsToPromptsBesideTheConfig()
    {
        _ws.Write("ordo.yaml", "models: { standard: { provider: ollama, model: llama3.1 } }\n");
        _ws.Write("prompts/ask.md", "Ask.");
        _ws.Write("wf.yaml", "workflow: p\nversion: 1\nagents: { asker: { kind: llm, prompt: ask } }\nsteps:\n  - { id: one, agent: asker }\n");

        var wf = await _ws.LoadAsync();

        Assert.Equal("standard", wf.Agents["asker"].Tier);
        Assert.Equal("Ask.", wf.Agents["asker"].Prompt!.Body.Source);
    }

    [Fact]
    public async Task LoadFileAsync_Bundle_HoldsEveryFileRead()
    {
        WriteProject();
        _ws.Write("wf.yaml", FullWorkflow);

        var wf = await _ws.LoadAsync();

        var bundle = wf.Bundle!;
        Assert.Equal("wf.yaml", bundle.Entry);
        Assert.Equal("ordo.yaml", bundle.Config);
        foreach (var file in new[] { "wf.yaml", "ordo.yaml", "tools.yaml", "prompts/extract.md", "prompts/review.md", "fixtures/responses.yaml", "schemas/finding.json", "schemas/crm_update.json", "data/ledger.sql" })
        {
            Assert.True(bundle.Files.ContainsKey(file), $"the bundle lacks {file}: {string.Join(", ", bundle.Files.Keys)}");
        }

        Assert.Equal(wf.Hash, bundle.ComputeHash());
    }

    [Fact]
    public async Task LoadBundleAsync_ReproducesTheDefinitionWithoutReadingFiles()
    {
        WriteProject();
        _ws.Write("wf.yaml", FullWorkflow);
        var wf = await _ws.LoadAsync();
        var stored = DefinitionBundle.FromBytes(wf.Bundle!.ToBytes());
        _ws.Write("wf.yaml", "this: is no longer a workflow");
        File.Delete(_ws.PathOf("prompts/extract.md"));

        var again = await WorkflowLoader.LoadBundleAsync(stored);

        Assert.Equal(wf.Hash, again.Hash);
        Assert.Equal(wf.Steps.Select(s => s.Id), again.Steps.Select(s => s.Id));
        Assert.Equal(wf.Agents["extractor"].Prompt!.Hash, again.Agents["extractor"].Prompt!.Hash);
    }

    [Fact]
    public async Task LoadFileAsync_ExplicitConfigPath_IsUsedInsteadOfTheOneBeside()
    {
        _ws.Write("config/ordo.yaml", "models: { fast: { provider: ollama, model: m } }\n");
        _ws.Write("wf.yaml", "workflow: p\nversion: 1\nagents: { x: { kind: llm, tier: fast } }\nsteps:\n  - { id: one, agent: x }\n");

        await _ws.ProblemsAsync();
        var wf = await _ws.LoadAsync(config: "config/ordo.yaml");

        Assert.Equal("fast", wf.Agents["x"].Tier);
        Assert.Equal(_ws.PathOf("config/ordo.yaml"), wf.Project.ConfigFile);
    }

    private static JsonElement TestJson(string json) => JsonElementFactory.Parse(json);
}
