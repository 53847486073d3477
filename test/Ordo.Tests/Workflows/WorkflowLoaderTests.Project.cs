using Ordo.Configuration;
using Ordo.Expressions;
using Ordo.Tools;
using Ordo.Workflows;

namespace Ordo.Tests.Workflows;

/// <summary>ordo.yaml, tools.yaml and scripted fixtures, loaded with <see cref="WorkflowLoader.LoadProjectAsync"/>.</summary>
public sealed partial class WorkflowLoaderTests
{
    private async Task<ProjectDefinition> LoadProjectAsync(string? ordoYaml = null, string? toolsYaml = null)
    {
        WriteProject(ordoYaml, toolsYaml);
        return await WorkflowLoader.LoadProjectAsync(_ws.PathOf("ordo.yaml"));
    }

    private async Task<IReadOnlyList<ValidationProblem>> ProjectProblemsAsync(string? ordoYaml = null, string? toolsYaml = null)
    {
        WriteProject(ordoYaml, toolsYaml);
        return await _ws.ProjectProblemsAsync();
    }

    [Fact]
    public async Task Project_Storage_ReadsSqlitePathAndDurability()
    {
        var project = await LoadProjectAsync();

        Assert.Equal(_ws.PathOf("ordo.db"), project.Storage!.Sqlite);
        Assert.Null(project.Storage.Postgres);
        Assert.Equal("full", project.Storage.Durability);
        Assert.Equal(_ws.PathOf("ordo.yaml"), project.ConfigFile);
        Assert.Equal(_ws.Root, project.BaseDirectory);
    }

    [Theory]
    [InlineData("storage: { postgres: \"Host=db;Database=ordo\" }", null, "Host=db;Database=ordo", "normal")]
    [InlineData("storage: { sqlite: data/o.db, durability: normal }", "data/o.db", null, "normal")]
    public async Task Project_Storage_Variants(string yaml, string? sqlite, string? postgres, string durability)
    {
        var project = await LoadProjectAsync(yaml + "\n");

        Assert.Equal(sqlite is null ? null : _ws.PathOf(sqlite), project.Storage!.Sqlite);
        Assert.Equal(postgres, project.Storage.Postgres);
        Assert.Equal(durability, project.Storage.Durability);
    }

    [Theory]
    [InlineData("storage: { sqlite: a.db, postgres: \"Host=x\" }", "storage", "either 'sqlite' or 'postgres'")]
    [InlineData("storage: { sqlite: a.db, durability: paranoid }", "storage.durability", "'paranoid' is not one of: normal, full")]
    [InlineData("storage: { sqlite: a.db, durabilty: full }", "storage.durabilty", "did you mean 'durability'")]
    [InlineData("storage: { sqlite: \"${env:ORDO_TEST_SURELY_UNSET_VARIABLE}\" }", "storage", "ORDO_TEST_SURELY_UNSET_VARIABLE is not set")]
    [InlineData("storage: sqlite", "storage", "expected a mapping")]
    public async Task Project_Storage_Errors(string yaml, string path, string message)
    {
        var problems = await ProjectProblemsAsync(yaml + "\n");
        var p = Problem(problems, path, message);
        Assert.Equal(_ws.PathOf("ordo.yaml"), Path.GetFullPath(p.File!));
        Assert.Equal(1, p.Line);
    }

    [Fact]
    public async Task Project_Models_ReadProvidersPricesFixturesAndFallback()
    {
        var project = await LoadProjectAsync();

        var fast = project.Models["fast"];
        Assert.Equal("openai", fast.Provider);
        Assert.Equal("gpt-4o-mini", fast.Model);
        Assert.Equal("http://127.0.0.1:9/v1", fast.Endpoint);
        Assert.Equal("${secret:OPENAI_API_KEY}", fast.ApiKey);
        Assert.Equal(0.00015m, fast.InputPer1K);
        Assert.Equal(0.0006m, fast.OutputPer1K);
        Assert.Equal(0.00075m, fast.CostOf(1000, 1000));

        var standard = project.Models["standard"];
        Assert.Equal("ollama", standard.Provider);
        Assert.Equal(0m, standard.InputPer1K);

        var high = project.Models["high"];
        Assert.Equal("scripted", high.Provider);
        Assert.NotNull(high.Fixtures);
        Assert.Equal(3, project.Models.Count);
        Assert.Equal("standard", project.ModelFallback["high"]);
    }

    [Fact]
    public async Task Project_Fixtures_ReadAgentAttemptWhenContentErrorAndUsage()
    {
        var project = await LoadProjectAsync();

        var responses = project.Models["high"].Fixtures!.Responses;
        Assert.Equal(4, responses.Count);
        Assert.Equal(("extractor", 1, "{\"lines\": []}", 800L, 40L), (responses[0].Agent, responses[0].Attempt, responses[0].Content, responses[0].InputTokens, responses[0].OutputTokens));
        Assert.Null(responses[1].Attempt);
        Assert.Null(responses[1].When);
        Assert.Equal("input.invoices.length > 3", responses[2].When!.Source);
        Assert.True(Evaluator.EvaluateBoolean(responses[2].When!, new ExpressionScope { Input = TestJson("""{"invoices": [1, 2, 3, 4]}""") }));
        Assert.Equal("""{"amount":12.5,"confidence":0.9}""", responses[2].Content);
        Assert.Equal("timeout", responses[3].Error);
        Assert.Null(responses[3].Content);
        Assert.Contains("responses.yaml:", responses[0].Location, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("timeout")]
    [InlineData("rate_limited")]
    [InlineData("server_error")]
    [InlineData("malformed")]
    public async Task Project_Fixtures_AcceptEveryErrorKind(string error)
    {
        WriteProject();
        _ws.Write("fixtures/responses.yaml", $"responses:\n  - {"{"} agent: a, error: {error} {"}"}\n");

        var project = await WorkflowLoader.LoadProjectAsync(_ws.PathOf("ordo.yaml"));

        Assert.Equal(error, project.Models["high"].Fixtures!.Responses[0].Error);
    }

    [Theory]
    [InlineData("  - { agent: a, error: explode }", "responses[0].error", "not one of: timeout, rate_limited, server_error, malformed")]
    [InlineData("  - { agent: a, content: x, error: timeout }", "responses[0]", "exactly one of 'content', 'error' or 'tool_calls'")]
    [InlineData("  - { agent: a }", "responses[0]", "exactly one of 'content', 'error' or 'tool_calls'")]
    [InlineData("  - { content: x }", "responses[0].agent", "missing required key 'agent'")]
    [InlineData("  - { agent: a, attempt: 0, content: x }", "responses[0].attempt", "at least 1")]
    [InlineData("  - { agent: a, when: \"input.x >\", content: x }", "responses[0].when", "invalid expression")]
    [InlineData("  - { agent: a, content: x, usage: { input_tokens: many } }", "responses[0].usage.input_tokens", "expected an integer")]
    [InlineData("  - { agent: a, content: x, usage: { tokens: 1 } }", "responses[0].usage.tokens", "unknown key")]
    [InlineData("  - { agent: a, contents: x }", "responses[0].contents", "did you mean 'content'")]
    [InlineData("  - { agent: a, when: \"${secret:KEY} == 'x'\", content: x }", "responses[0].when", "secrets")]
    public async Task Project_Fixtures_Errors_AreReportedInTheFixturesFile(string entry, string path, string message)
    {
        WriteProject();
        _ws.Write("fixtures/responses.yaml", "responses:\n" + entry + "\n");

        var problems = await _ws.ProjectProblemsAsync();

        var p = Problem(problems, path, message);
        Assert.Equal(_ws.PathOf("fixtures/responses.yaml"), Path.GetFullPath(p.File!));
        Assert.Equal(2, p.Line);
    }

    [Theory]
    [InlineData("models: { fast: { provider: openia, model: m } }", "models.fast.provider", "not one of")]
    [InlineData("models: { fast: { model: m } }", "models.fast.provider", "missing required key 'provider'")]
    [InlineData("models: { fast: { provider: openai } }", "models.fast", "needs 'model'")]
    [InlineData("models: { fast: { provider: scripted } }", "models.fast", "needs 'fixtures: FILE'")]
    [InlineData("models: { fast: { provider: scripted, fixtures: fixtures/none.yaml } }", "models.fast.fixtures", "fixtures file")]
    [InlineData("models: { fast: { provider: ollama, model: m, fixtures: fixtures/responses.yaml } }", "models.fast.fixtures", "only to the scripted provider")]
    [InlineData("models: { fast: { provider: ollama, model: m, price: { input_per_1k: free } } }", "models.fast.price.input_per_1k", "expected a number")]
    [InlineData("models: { fast: { provider: ollama, model: m, price: { input_per_1k: -1 } } }", "models.fast.price.input_per_1k", "at least 0")]
    [InlineData("models: { fast: { provider: ollama, model: m, price: { per_1k: 1 } } }", "models.fast.price.per_1k", "unknown key")]
    [InlineData("models: { fast: { provider: ollama, model: m, timeout: 30x } }", "models.fast.timeout", "invalid duration")]
    [InlineData("models: { fast: { provider: ollama, model: m }, fallback: { fast: slow } }", "models", "fallback names tier 'slow'")]
    [InlineData("models: { fast: { provider: ollama, modle: m } }", "models.fast.modle", "did you mean 'model'")]
    public async Task Project_Models_Errors(string yaml, string path, string message)
    {
        var problems = await ProjectProblemsAsync(yaml + "\n");
        var p = Problem(problems, path, message);
        Assert.Equal(_ws.PathOf("ordo.yaml"), Path.GetFullPath(p.File!));
        Assert.True(p.Line == 1 && p.Column > 0, p.ToString());
    }

    [Fact]
    public async Task Project_Connections_ReadSqliteWithInitAndPostgres()
    {
        var project = await LoadProjectAsync("connections:\n  ledger: { sqlite: data/ledger.db, init: data/ledger.sql }\n  warehouse: { postgres: \"Host=db;Database=wh\" }\n");

        var ledger = project.Connections["ledger"];
        Assert.Equal("sqlite", ledger.Provider);
        Assert.Equal(_ws.PathOf("data/ledger.db"), ledger.Target);
        Assert.Equal("CREATE TABLE IF NOT EXISTS invoices(id TEXT PRIMARY KEY, vendor_id TEXT, amount REAL);", ledger.InitSql);
        var wh = project.Connections["warehouse"];
        Assert.Equal("postgres", wh.Provider);
        Assert.Equal("Host=db;Database=wh", wh.Target);
        Assert.Null(wh.InitSql);
    }

    [Theory]
    [InlineData("connections: { ledger: { sqlite: l.db, init: data/missing.sql } }", "connections.ledger.init", "init file")]
    [InlineData("connections: { ledger: { sqlite: l.db, postgres: \"Host=x\" } }", "connections.ledger", "exactly one of 'sqlite' or 'postgres'")]
    [InlineData("connections: { ledger: {} }", "connections.ledger", "exactly one of 'sqlite' or 'postgres'")]
    [InlineData("connections: { ledger: { mysql: x } }", "connections.ledger.mysql", "unknown key")]
    [InlineData("mcp_servers: { docs: { command: [node], url: \"http://x\" } }", "mcp_servers.docs", "exactly one of 'command' or 'url'")]
    [InlineData("mcp_servers: { docs: {} }", "mcp_servers.docs", "exactly one of 'command' or 'url'")]
    [InlineData("mcp_servers: { docs: { url: /mcp } }", "mcp_servers.docs.url", "not an absolute http(s) URL")]
    [InlineData("mcp_servers: { docs: { url: \"http://x/mcp\", env: { A: b } } }", "mcp_servers.docs.env", "'env' applies to a server started with 'command'")]
    [InlineData("mcp_servers: { docs: { command: [] } }", "mcp_servers.docs.command", "needs the program and its arguments")]
    [InlineData("mcp_servers: { docs: { command: [node], env: { A: \"${env:ORDO_TEST_SURELY_UNSET}\" } } }", "mcp_servers.docs.env.A", "ORDO_TEST_SURELY_UNSET is not set")]
    [InlineData("mcp_servers: { docs: { command: [node], env: { A: \"${secret:TOKEN}\" } } }", "mcp_servers.docs.env.A", "secrets (${secret:…}) may appear only in model and tool definitions")]
    [InlineData("tenants: { acme: { api_keys: [plaintext-key] } }", "tenants.acme.api_keys", "sha256:")]
    [InlineData("tenants: { acme: { quota: { concurrent_jobs: 0 } } }", "tenants.acme.quota.concurrent_jobs", "at least 1")]
    [InlineData("tenants: { acme: { quota: { jobs_per_hour: 5 } } }", "tenants.acme.quota.jobs_per_hour", "unknown key")]
    [InlineData("tenants: { acme: { roles: [alice] } }", "tenants.acme.roles", "expected a mapping")]
    [InlineData("prompts: no-such-folder/", "prompts", "prompt folder")]
    [InlineData("tools: [missing-tools.yaml]", "tools[0]", "tools file")]
    [InlineData("tools: missing-tools.yaml", "tools", "tools file")]
    [InlineData("modles: {}", "modles", "did you mean 'models'")]
    public async Task Project_OtherSections_Errors(string yaml, string path, string message)
    {
        var problems = await ProjectProblemsAsync(yaml + "\n");
        var p = Problem(problems, path, message);
        Assert.Equal(_ws.PathOf("ordo.yaml"), Path.GetFullPath(p.File!));
        Assert.True(p.Line == 1 && p.Column > 0, p.ToString());
    }

    [Fact]
    public async Task Project_McpServerWithARelativeProgramAndEnv_IsResolvedAgainstTheProject()
    {
        var project = await LoadProjectAsync("mcp_servers: { local: { command: [./servers/docs.sh, --verbose], env: { LEVEL: debug, HOME_COPY: \"${env:HOME}\" } }, onpath: { command: [node, x.js] } }\n");
        var local = project.McpServers["local"];
        Assert.Equal([_ws.PathOf("servers/docs.sh"), "--verbose"], local.Command);
        Assert.Equal("debug", local.Env["LEVEL"]);
        Assert.Equal(Environment.GetEnvironmentVariable("HOME"), local.Env["HOME_COPY"]);
        Assert.Equal(Path.GetDirectoryName(_ws.PathOf("ordo.yaml")), local.WorkingDirectory);
        Assert.Equal(["node", "x.js"], project.McpServers["onpath"].Command);
    }

    [Fact]
    public async Task Project_McpServersPluginsTenantsAndWorkflowFolders_AreRead()
    {
        var project = await LoadProjectAsync();

        Assert.Equal(["node", "docs-server.js"], project.McpServers["docs"].Command);
        Assert.Null(project.McpServers["docs"].Url);
        Assert.Equal("http://127.0.0.1:7000/mcp", project.McpServers["web"].Url);
        Assert.Equal([_ws.PathOf("bin/Acme.Agents.dll")], project.Plugins);
        Assert.Equal([_ws.PathOf("flows")], project.WorkflowFolders);
        Assert.Equal(_ws.PathOf("prompts/"), project.PromptsDirectory);

        var acme = project.Tenants["acme"];
        Assert.Equal([ApiKeyHash], acme.ApiKeys);
        Assert.Equal(["submitter"], acme.Roles["alice"]);
        Assert.Equal(["approver", "operator"], acme.Roles["carol"]);
        Assert.Equal(50, acme.ConcurrentJobs);
        Assert.Equal(600, acme.JobsPerMinute);
    }

    [Fact]
    public async Task Project_EmptyConfig_IsValid()
    {
        var project = await LoadProjectAsync("# nothing configured\n{}\n");

        Assert.Null(project.Storage);
        Assert.Empty(project.Models);
        Assert.Empty(project.Tools);
    }

    [Fact]
    public async Task Project_MissingConfigFile_IsReported()
    {
        var e = await Assert.ThrowsAsync<OrdoValidationException>(() => WorkflowLoader.LoadProjectAsync(_ws.PathOf("none.yaml")));
        Assert.Contains("does not exist", Assert.Single(e.Problems).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tools_EveryKindIsRead()
    {
        var project = await LoadProjectAsync(toolsYaml: """
            tools:
              ledger.query:
                kind: sql
                connection: ledger
                query: "SELECT vendor_id, amount FROM invoices WHERE id = @invoice_id"
                effect: read
                description: Reads the ledger.
                args: { type: object, required: [invoice_id], properties: { invoice_id: { type: string, pattern: "^INV-[0-9]+$" } } }
                cache: 10m
              crm.update:
                kind: http
                method: PATCH
                url: "http://127.0.0.1:8082/customers/{customer_id}"
                headers: { Authorization: "Bearer ${secret:CRM_TOKEN}", X-Source: ordo }
                effect: write
                args: { $ref: schemas/crm_update.json }
                result: { $ref: schemas/crm_result.json }
              docs.search: { kind: mcp, server: docs, tool: search, effect: read }
              fx.convert: { kind: code, type: Acme.Tools.Fx, effect: read }
              calc.sum: { kind: code }
            """);

        var query = project.Tools["ledger.query"];
        Assert.Equal(("sql", ToolEffect.Read, "read"), (query.Kind, query.Effect, query.EffectName));
        Assert.Equal("ledger", query.Connection);
        Assert.StartsWith("SELECT vendor_id", query.Query, StringComparison.Ordinal);
        Assert.Equal(TimeSpan.FromMinutes(10), query.Cache);
        Assert.Equal("Reads the ledger.", query.Description);
        Assert.Empty(query.Args!.Validate(TestJson("""{"invoice_id": "INV-7"}""")));
        Assert.NotEmpty(query.Args.Validate(TestJson("""{"invoice_id": "7"}""")));

        var crm = project.Tools["crm.update"];
        Assert.Equal(("http", "PATCH", ToolEffect.Write), (crm.Kind, crm.Method, crm.Effect));
        Assert.Equal("http://127.0.0.1:8082/customers/{customer_id}", crm.Url);
        Assert.Equal("Bearer ${secret:CRM_TOKEN}", crm.Headers["authorization"]);
        Assert.Equal("ordo", crm.Headers["X-Source"]);
        Assert.NotEmpty(crm.Args!.Validate(TestJson("{}")));
        Assert.NotEmpty(crm.Result!.Validate(TestJson("""{"ok": "yes"}""")));
        Assert.Null(crm.Cache);

        var docs = project.Tools["docs.search"];
        Assert.Equal(("mcp", "docs", "search"), (docs.Kind, docs.Server, docs.McpTool));

        Assert.Equal(("code", "Acme.Tools.Fx"), (project.Tools["fx.convert"].Kind, project.Tools["fx.convert"].Type));
        Assert.Null(project.Tools["calc.sum"].Type);
        Assert.Equal(ToolEffect.Write, project.Tools["calc.sum"].Effect);
    }

    [Fact]
    public async Task Tools_SqlResultLimits_HaveDefaults_AndCanBeSetPerTool()
    {
        var project = await LoadProjectAsync(toolsYaml: """
            tools:
              plain: { kind: sql, connection: ledger, query: "SELECT 1" }
              bounded: { kind: sql, connection: ledger, query: "SELECT 1", max_rows: 50, max_result_bytes: 65536 }
            """);

        Assert.Equal((10_000, 4L * 1024 * 1024), (project.Tools["plain"].MaxRows, project.Tools["plain"].MaxResultBytes));
        Assert.Equal((ToolDefinition.DefaultMaxRows, ToolDefinition.DefaultMaxResultBytes), (project.Tools["plain"].MaxRows, project.Tools["plain"].MaxResultBytes));
        Assert.Equal((50, 65536L), (project.Tools["bounded"].MaxRows, project.Tools["bounded"].MaxResultBytes));
    }

    [Fact]
    public async Task Tools_DefaultsApplyUnlessATooOverridesThem()
    {
        var project = await LoadProjectAsync(toolsYaml: """
            tools:
              plain: { kind: code }
              custom:
                kind: code
                timeout: 2s
                retry: { max_attempts: 5, backoff: 1s, max_backoff: 20s }
                circuit_breaker: { failure_ratio: 0.25, min_calls: 4, break: 1m }
                rate_limit: { per_job: 20, per_tenant_per_minute: 600 }
                allow: { agents: [extractor], tenants: [acme, globex] }
            defaults:
              timeout: 10s
              retry: { max_attempts: 3, backoff: 200ms }
              circuit_breaker: { failure_ratio: 0.5, min_calls: 10, break: 30s }
              rate_limit: { per_job: 100 }
            """);

        var plain = project.Tools["plain"];
        Assert.Equal(TimeSpan.FromSeconds(10), plain.Timeout);
        Assert.Equal(3, plain.Retry.MaxAttempts);
        Assert.Equal(TimeSpan.FromMilliseconds(200), plain.Retry.Backoff);
        Assert.Equal((0.5, 10, TimeSpan.FromSeconds(30)), (plain.CircuitBreaker.FailureRatio, plain.CircuitBreaker.MinCalls, plain.CircuitBreaker.Break));
        Assert.Equal(100, plain.RateLimit!.PerJob);
        Assert.Null(plain.AllowAgents);
        Assert.Null(plain.AllowTenants);

        var custom = project.Tools["custom"];
        Assert.Equal(TimeSpan.FromSeconds(2), custom.Timeout);
        Assert.Equal((5, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(20)), (custom.Retry.MaxAttempts, custom.Retry.Backoff, custom.Retry.MaxBackoff));
        Assert.Equal((0.25, 4, TimeSpan.FromMinutes(1)), (custom.CircuitBreaker.FailureRatio, custom.CircuitBreaker.MinCalls, custom.CircuitBreaker.Break));
        Assert.Equal((20, 600), (custom.RateLimit!.PerJob, custom.RateLimit.PerTenantPerMinute));
        Assert.Equal(["extractor"], custom.AllowAgents);
        Assert.Equal(["acme", "globex"], custom.AllowTenants);
    }

    [Fact]
    public async Task Tools_Http_RedirectsResponseLimitAndAllowedAddresses()
    {
        var project = await LoadProjectAsync(toolsYaml: """
            tools:
              guarded: { kind: http, url: "http://127.0.0.1:9/x" }
              open:
                kind: http
                url: "http://127.0.0.1:9/x"
                redirects: any
                max_response_bytes: 1048576
                allow_addresses: [169.254.169.254, "fd00:ec2::254", 10.0.0.0/8, metadata.google.internal]
              closed: { kind: http, url: "http://127.0.0.1:9/x", redirects: none, allow_addresses: 169.254.169.254 }
            """);

        var guarded = project.Tools["guarded"];
        Assert.Equal((HttpRedirects.SameOrigin, 4L * 1024 * 1024), (guarded.Redirects, guarded.MaxResponseBytes));
        Assert.Empty(guarded.AllowAddresses);
        var open = project.Tools["open"];
        Assert.Equal((HttpRedirects.Any, 1048576L), (open.Redirects, open.MaxResponseBytes));
        Assert.Equal(["169.254.169.254", "fd00:ec2::254", "10.0.0.0/8", "metadata.google.internal"], open.AllowAddresses);
        var closed = project.Tools["closed"];
        Assert.Equal(HttpRedirects.None, closed.Redirects);
        Assert.Equal(["169.254.169.254"], closed.AllowAddresses);
    }

    [Fact]
    public async Task Models_AlternativesByEnvironment_TheFirstThatAppliesIsTheTier_WithEnvDefaults()
    {
        var variable = "ORDO_TEST_ENDPOINT_" + Guid.NewGuid().ToString("N");
        var yaml = $$"""
            models:
              standard:
                - { when_env: {{variable}}, provider: openai-compatible, endpoint: "${env:{{variable}}}", model: "${env:{{variable}}_MODEL:-local}" }
                - { provider: ollama, model: llama3.1 }
            """;
        var offline = await LoadProjectAsync(yaml);
        Assert.Equal(("ollama", "llama3.1"), (offline.Models["standard"].Provider, offline.Models["standard"].Model));

        Environment.SetEnvironmentVariable(variable, "http://127.0.0.1:9/v1");
        try
        {
            var live = await LoadProjectAsync(yaml);
            Assert.Equal(("openai-compatible", "local"), (live.Models["standard"].Provider, live.Models["standard"].Model));
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }

        var none = await ProjectProblemsAsync($"models:\n  standard:\n    - {{ when_env: {variable}, provider: ollama, model: m }}\n");
        Assert.Contains(none, p => p.Message.Contains($"no alternative of model tier 'standard' applies: set {variable}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Tools_WithoutDefaults_UseTheBuiltInOnes()
    {
        var project = await LoadProjectAsync(toolsYaml: "tools:\n  plain: { kind: code }\n");

        var plain = project.Tools["plain"];
        Assert.Equal(TimeSpan.FromSeconds(10), plain.Timeout);
        Assert.Equal(ToolRetrySettings.Default, plain.Retry);
        Assert.Equal(CircuitBreakerSettings.Default, plain.CircuitBreaker);
        Assert.Null(plain.RateLimit);
    }

    [Theory]
    [InlineData("  t: { kind: sql, connection: ledger, query: q, effect: write, cache: 5m }", "tools.t.cache", "only to tools with effect: read")]
    [InlineData("  t: { kind: code, cache: 5m }", "tools.t.cache", "only to tools with effect: read")]
    [InlineData("  t: { kind: sql, connection: ledger, query: q, effect: read, cache: 5x }", "tools.t.cache", "invalid duration")]
    [InlineData("  t: { kind: sql, connection: nowhere, query: q }", "tools.t.connection", "connection 'nowhere' is not defined")]
    [InlineData("  t: { kind: sql, connection: ledger }", "tools.t.query", "missing required key 'query'")]
    [InlineData("  t: { kind: sql, connection: ledger, query: q, max_rows: 0 }", "tools.t.max_rows", "must be at least 1, found 0")]
    [InlineData("  t: { kind: sql, connection: ledger, query: q, max_rows: lots }", "tools.t.max_rows", "expected an integer")]
    [InlineData("  t: { kind: sql, connection: ledger, query: q, max_result_bytes: -5 }", "tools.t.max_result_bytes", "must be between 1 and 268435456")]
    [InlineData("  t: { kind: sql, connection: ledger, query: q, max_result_bytes: 300000000 }", "tools.t.max_result_bytes", "must be between 1 and 268435456")]
    [InlineData("  t: { kind: sql, connection: ledger, query: q, max_result_bytes: 4MB }", "tools.t.max_result_bytes", "expected an integer")]
    [InlineData("  t: { kind: http, url: \"http://x\", max_rows: 5 }", "tools.t.max_rows", "unknown key")]
    [InlineData("  t: { kind: http, url: /relative }", "tools.t.url", "not an absolute URL")]
    [InlineData("  t: { kind: http, method: FETCH, url: \"http://x\" }", "tools.t.method", "not one of")]
    [InlineData("  t: { kind: http, url: \"http://{host}:8080/x\" }", "tools.t.url", "a placeholder cannot be part of the URL's scheme, host or port")]
    [InlineData("  t: { kind: http, url: \"http://api.example.com:{port}/x\" }", "tools.t.url", "a placeholder cannot be part of the URL's scheme, host or port")]
    [InlineData("  t: { kind: http, url: \"http://{user}@api.example.com/x\" }", "tools.t.url", "a placeholder cannot be part of the URL's scheme, host or port")]
    [InlineData("  t: { kind: http, url: \"{scheme}://api.example.com/x\" }", "tools.t.url", "a placeholder cannot be part of the URL's scheme, host or port")]
    [InlineData("  t: { kind: http, url: \"http://api{region}.example.com?q={q}\" }", "tools.t.url", "a placeholder cannot be part of the URL's scheme, host or port")]
    [InlineData("  t: { kind: http, url: \"http://x\", redirects: sometimes }", "tools.t.redirects", "'sometimes' is not one of: none, same_origin, any")]
    [InlineData("  t: { kind: http, url: \"http://x\", max_response_bytes: 0 }", "tools.t.max_response_bytes", "must be between 1 and 268435456")]
    [InlineData("  t: { kind: http, url: \"http://x\", max_response_bytes: 4MB }", "tools.t.max_response_bytes", "expected an integer")]
    [InlineData("  t: { kind: http, url: \"http://x\", allow_addresses: [169.254.169.254, \"not an address!\"] }", "tools.t.allow_addresses[1]", "'not an address!' is not an IP address, a network")]
    [InlineData("  t: { kind: http, url: \"http://x\", allow_addresses: [\"169.254.0.0/33\"] }", "tools.t.allow_addresses[0]", "prefix length after '/' must be 0 to 32")]
    [InlineData("  t: { kind: http, url: \"http://x\", allow_addresses: { ip: 169.254.169.254 } }", "tools.t.allow_addresses", "expected a list of addresses")]
    [InlineData("  t: { kind: code, redirects: any }", "tools.t.redirects", "unknown key")]
    [InlineData("  t: { kind: mcp, server: nowhere, tool: search }", "tools.t.server", "MCP server 'nowhere' is not defined")]
    [InlineData("  t: { kind: mcp, server: docs }", "tools.t.tool", "missing required key 'tool'")]
    [InlineData("  t: { kind: ftp }", "tools.t.kind", "not one of: sql, http, mcp, code")]
    [InlineData("  t: { effect: read }", "tools.t.kind", "missing required key 'kind'")]
    [InlineData("  t: { kind: code, effect: destroy }", "tools.t.effect", "not one of: read, write, irreversible")]
    [InlineData("  t: { kind: code, timeout: 10 seconds }", "tools.t.timeout", "invalid duration")]
    [InlineData("  t: { kind: code, timeout: 0ms }", "tools.t.timeout", "must be longer than 0")]
    [InlineData("  t: { kind: code, retry: { max_attempts: 0 } }", "tools.t.retry.max_attempts", "between 1 and 100")]
    [InlineData("  t: { kind: code, circuit_breaker: { failure_ratio: 2 } }", "tools.t.circuit_breaker.failure_ratio", "between")]
    [InlineData("  t: { kind: code, rate_limit: { per_minute: 3 } }", "tools.t.rate_limit.per_minute", "unknown key")]
    [InlineData("  t: { kind: code, allow: { roles: [x] } }", "tools.t.allow.roles", "unknown key")]
    [InlineData("  t: { kind: code, args: { $ref: schemas/none.json } }", "tools.t.args.$ref", "does not exist")]
    [InlineData("  t: { kind: code, args: 5 }", "tools.t.args", "does not exist")]
    [InlineData("  t: { kind: code, efect: read }", "tools.t.efect", "did you mean 'effect'")]
    [InlineData("  \"bad name!\": { kind: code }", "tools.bad name!", "not a valid tool name")]
    public async Task Tools_Errors_AreReportedInTheToolsFile(string tool, string path, string message)
    {
        var problems = await ProjectProblemsAsync(toolsYaml: "tools:\n" + tool + "\n");

        var p = Problem(problems, path, message);
        Assert.Equal(_ws.PathOf("tools.yaml"), Path.GetFullPath(p.File!));
        Assert.Equal(2, p.Line);
        Assert.True(p.Column > 1);
    }

    [Fact]
    public async Task Tools_MissingKind_DoesNotAlsoReportTheKeysOfTheKind()
    {
        var problems = await ProjectProblemsAsync(toolsYaml: "tools:\n  t: { kin: sql, connection: ledger, query: q }\n");

        Assert.Equal(["tools.t.kin", "tools.t.kind"], problems.Select(p => p.Path).Order(StringComparer.Ordinal));
        Problem(problems, "tools.t.kin", "did you mean 'kind'");
    }

    [Fact]
    public async Task Tools_DefinedTwice_AcrossFiles_IsReported()
    {
        WriteProject(ordoYaml: "tools: [tools.yaml, more-tools.yaml]\n", toolsYaml: "tools:\n  t: { kind: code }\n");
        _ws.Write("more-tools.yaml", "tools:\n  t: { kind: code }\n");

        var problems = await _ws.ProjectProblemsAsync();

        var p = Problem(problems, "tools.t", "defined twice");
        Assert.Equal(_ws.PathOf("more-tools.yaml"), Path.GetFullPath(p.File!));
    }

    [Fact]
    public async Task Tools_CodeToolRegistry_IsConsultedWhenGiven()
    {
        WriteProject(toolsYaml: "tools:\n  fx.convert: { kind: code, type: Acme.Fx }\n  calc.sum: { kind: code }\n");
        _ws.Write("wf.yaml", Workflow("  - { id: one, agent: a }"));
        var options = new WorkflowLoadOptions { CodeToolExists = name => name == "calc.sum" };

        var problems = await _ws.ProblemsAsync(options: options);

        var p = Assert.Single(problems);
        Assert.Equal("tools.fx.convert", p.Path);
        Assert.Contains("code tool 'Acme.Fx' is not registered", p.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tools_SecretsAreAllowedInToolAndModelDefinitions()
    {
        var project = await LoadProjectAsync();
        Assert.Equal("Bearer ${secret:CRM_TOKEN}", project.Tools["crm.update"].Headers["Authorization"]);
        Assert.Equal("${secret:OPENAI_API_KEY}", project.Models["fast"].ApiKey);
    }

    [Theory]
    [InlineData("storage: { postgres: \"Host=db;Password=${secret:PG}\" }", "storage.postgres")]
    [InlineData("connections: { ledger: { postgres: \"Host=db;Password=${secret:PG}\" } }", "connections.ledger.postgres")]
    [InlineData("tenants: { acme: { roles: { alice: [\"${secret:ROLE}\"] } } }", "tenants.acme.roles.alice[0]")]
    [InlineData("mcp_servers: { docs: { url: \"http://x/${secret:TOKEN}\" } }", "mcp_servers.docs.url")]
    public async Task Project_SecretsOutsideModelsAndTools_AreRejected(string yaml, string path)
    {
        var problems = await ProjectProblemsAsync(yaml + "\n");
        Problem(problems, path, "secrets (${secret:…}) may appear only in model and tool definitions");
    }

    [Fact]
    public async Task Project_ProjectLoadedCallback_SeesTheProjectBeforeTheWorkflowIsChecked()
    {
        WriteProject();
        _ws.Write("wf.yaml", FullWorkflow);
        ProjectDefinition? seen = null;

        await _ws.LoadAsync(options: new WorkflowLoadOptions { ProjectLoaded = p => seen = p });

        Assert.NotNull(seen);
        Assert.Equal([_ws.PathOf("bin/Acme.Agents.dll")], seen!.Plugins);
    }
}
