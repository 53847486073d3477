using System.Globalization;
using System.Text.RegularExpressions;
using Ordo.Agents.Models;
using Ordo.Configuration;
using Ordo.Tools;
using Ordo.Workflows.Yaml;

namespace Ordo.Workflows.Loading;

/// <summary>Loads <c>ordo.yaml</c> and the files it names (tools, fixtures) into a <see cref="ProjectDefinition"/>.</summary>
internal static partial class ProjectLoader
{
    public static readonly string[] Providers = ["scripted", "openai", "azure-openai", "ollama", "vllm", "lmstudio", "openai-compatible"];
    private static readonly string[] ToolKinds = ["sql", "http", "mcp", "code"];
    private static readonly string[] Effects = ["read", "write", "irreversible"];
    private static readonly string[] RedirectModes = ["none", "same_origin", "any"];
    private static readonly string[] FixtureErrors = ["timeout", "rate_limited", "server_error", "malformed"];

    public static async Task<ProjectDefinition> LoadAsync(LoadContext ctx, string? configPath, string workflowDirectory)
    {
        if (configPath is null)
        {
            return ProjectDefinition.Empty(workflowDirectory);
        }

        var baseDir = Path.GetDirectoryName(configPath)!;
        var root = ctx.LoadYaml(configPath, null, "config file");
        if (root is null)
        {
            return ProjectDefinition.Empty(baseDir);
        }

        var map = YMap.Open(root.Value, ctx.Problems, "a mapping of settings");
        if (map is null)
        {
            return ProjectDefinition.Empty(baseDir);
        }

        var storage = LoadStorage(ctx, map.Get("storage"), baseDir);
        var audit = LoadAudit(ctx, map.Get("audit"), baseDir);
        var (models, fallback) = LoadModels(ctx, map.Get("models"), baseDir);
        var connections = LoadConnections(ctx, map.Get("connections"), baseDir);
        var mcp = LoadMcpServers(ctx, map.Get("mcp_servers"), baseDir);
        var tools = new Dictionary<string, ToolDefinition>(StringComparer.Ordinal);
        foreach (var (file, at) in Files(ctx, map, "tools"))
        {
            await LoadToolsFileAsync(ctx, LoadContext.Resolve(baseDir, file), at, tools, connections, mcp).ConfigureAwait(false);
        }

        var policies = new List<Policies.PolicySet>();
        foreach (var (file, at) in Files(ctx, map, "policies"))
        {
            if (PolicyLoader.Load(ctx, LoadContext.Resolve(baseDir, file), at) is { } set)
            {
                if (policies.Any(p => p.Name == set.Name))
                {
                    ctx.Problems.Add(at, $"policy '{set.Name}' is listed twice");
                    continue;
                }

                policies.Add(set);
            }
        }

        string? prompts = null;
        if (map.String("prompts") is { } p)
        {
            prompts = LoadContext.Resolve(baseDir, p);
            if (!ctx.Files.DirectoryExists(prompts))
            {
                ctx.Problems.Add(map.Get("prompts")!.Value, $"prompt folder '{ctx.Files.Display(prompts)}' does not exist");
            }
        }

        var plugins = (map.StringList("plugins") ?? []).Select(x => LoadContext.Resolve(baseDir, x)).ToList();
        var tenants = LoadTenants(ctx, map.Get("tenants"));
        var folders = (map.StringList("workflows") ?? []).Select(x => LoadContext.Resolve(baseDir, x)).ToList();
        // A job's stored definition is loaded as it was accepted when the job was submitted: checks added since then
        // apply to files being loaded, never to a job already running or recorded (it must still resume and replay).
        var stored = ctx.Files is BundleDefinitionFileSource;
        var releases = LoadReleases(ctx, map.Get("releases"), strict: !stored);
        var faults = LoadFaults(ctx, map.Get("faults"), models, tools, strict: !stored);
        map.RejectUnknown();

        // The gateway resolves secrets only for models and tools: anywhere else in ordo.yaml one would be used as written.
        foreach (var key in map.Keys.Where(k => k != "models").ToList())
        {
            if (map.Get(key) is { } value)
            {
                ctx.RejectSecrets(value, $"'{key}' of ordo.yaml");
            }
        }

        return new ProjectDefinition
        {
            ConfigFile = configPath,
            BaseDirectory = baseDir,
            Storage = storage,
            Audit = audit,
            Models = models,
            ModelFallback = fallback,
            Tools = tools,
            Connections = connections,
            McpServers = mcp,
            Plugins = plugins,
            Tenants = tenants,
            WorkflowFolders = folders,
            PromptsDirectory = prompts,
            Policies = policies,
            Releases = releases,
            Faults = faults,
        };
    }

    /// <summary>
    /// <c>faults: { seed, models: [ { tier, agent, error, rate, attempts } ], tools: [ { tool, error, latency, rate } ] }</c>.
    /// With <paramref name="strict"/>, a tier, a tool (or a <c>prefix*</c>) must be one the project defines, a tool fault's
    /// error one of <see cref="Faults.ToolFault.Errors"/> and its latency at most <see cref="Faults.ToolFault.MaxLatency"/>;
    /// an agent is checked against the project's workflows by <see cref="ProjectChecks"/>, which the loader does not read.
    /// </summary>
    private static Faults.FaultSettings LoadFaults(LoadContext ctx, YNode? node, IReadOnlyDictionary<string, ModelTier> tiers, IReadOnlyDictionary<string, ToolDefinition> definedTools, bool strict)
    {
        if (node is not { } n || n.IsNull) return Ordo.Faults.FaultSettings.None;
        var m = YMap.Open(n, ctx.Problems, "{ seed, models, tools }");
        if (m is null) return Ordo.Faults.FaultSettings.None;
        var seed = m.Int("seed") ?? 0;
        var models = new List<Faults.ModelFault>();
        foreach (var item in Sequence(ctx, m.Get("models"), "a list of model faults"))
        {
            var f = YMap.Open(item, ctx.Problems, "{ tier, agent, error, rate, attempts }");
            if (f is null) continue;
            var error = f.Enum("error", ["timeout", "rate_limited", "server_error", "malformed"], required: true);
            var attempts = f.Get("attempts") is { } an && !an.IsNull
                ? an.Items().Select(i => int.TryParse(i.Scalar, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v) && v >= 1 ? v : Bad(i)).Where(v => v > 0).ToList()
                : null;
            var tier = f.String("tier");
            if (strict && tier is not null && !tiers.ContainsKey(tier))
            {
                ctx.Problems.Add(f.Get("tier")!.Value, $"there is no model tier '{tier}' (tiers: {(tiers.Count == 0 ? "none; define them under 'models:'" : string.Join(", ", tiers.Keys.Order(StringComparer.Ordinal)))})");
            }

            var agent = f.String("agent");
            var modelRate = f.Number("rate", min: 0, max: 1) ?? 1;
            if (strict && modelRate == 0)
            {
                // A fault that can only inject nothing is a mistake, as a typo in its agent would be.
                ctx.Problems.Add(f.Get("rate")!.Value, "a fault with rate 0 injects nothing: give a rate above 0 (at most 1), or remove the fault");
            }

            var model = new Faults.ModelFault(tier, agent, error ?? "", modelRate, attempts, item.Where())
            {
                AgentAt = agent is null ? null : Location(f.Get("agent")!.Value),
            };
            f.RejectUnknown();
            if (error is not null) models.Add(model);
        }

        var tools = new List<Faults.ToolFault>();
        foreach (var item in Sequence(ctx, m.Get("tools"), "a list of tool faults"))
        {
            var f = YMap.Open(item, ctx.Problems, "{ tool, error, latency, rate }");
            if (f is null) continue;
            var tool = f.String("tool", required: true);
            var error = strict ? f.Enum("error", Faults.ToolFault.Errors) : f.String("error");
            var latency = f.Duration("latency");
            var rate = f.Number("rate", min: 0, max: 1) ?? 1;
            f.RejectUnknown();
            if (strict && latency > Faults.ToolFault.MaxLatency)
            {
                ctx.Problems.Add(f.Get("latency")!.Value, $"a fault's latency is at most {Durations.Format(Faults.ToolFault.MaxLatency)}, found {f.Get("latency")!.Value.Describe()}");
                continue;
            }

            if (strict && tool is not null && !definedTools.Keys.Any(new Faults.ToolFault(tool, null, null, 1, "").Matches))
            {
                var defined = definedTools.Count == 0 ? "none; list tool files under 'tools:'" : string.Join(", ", definedTools.Keys.Order(StringComparer.Ordinal));
                ctx.Problems.Add(f.Get("tool")!.Value, tool.EndsWith('*')
                    ? $"no tool of the project starts with '{tool[..^1]}' (tools: {defined})"
                    : $"there is no tool '{tool}' (tools: {defined}; a name ending in * matches every tool it starts)");
                continue;
            }

            if (f.Get("error") is { } en && !en.IsNull && error is null) continue;
            if (error is null && (latency is null || (strict && latency <= TimeSpan.Zero)))
            {
                ctx.Problems.Add(item, "a tool fault needs an 'error' (the failure kind the call fails with) or a 'latency' above 0, or both: as it is, it injects nothing");
                continue;
            }

            if (strict && rate == 0)
            {
                ctx.Problems.Add(f.Get("rate")!.Value, "a fault with rate 0 injects nothing: give a rate above 0 (at most 1), or remove the fault");
                continue;
            }

            if (tool is not null) tools.Add(new Faults.ToolFault(tool, error, latency, rate, item.Where()));
        }

        m.RejectUnknown();
        return new Faults.FaultSettings(seed, models, tools);

        int Bad(YNode at)
        {
            ctx.Problems.Add(at, $"an attempt is a whole number from 1, found {at.Describe()}");
            return 0;
        }
    }

    private static IEnumerable<YNode> Sequence(LoadContext ctx, YNode? node, string what)
    {
        if (node is not { } n || n.IsNull) return [];
        if (!n.IsSequence)
        {
            ctx.Problems.Add(n, $"expected {what}, found {n.Describe()}");
            return [];
        }

        return n.Items();
    }

    /// <summary>
    /// <c>releases: { NAME: { stable, canary: { version, share, min_jobs, rollback_when: { failure_rate, gate_rejection_rate, cost_per_job } }, shadow: { version, share } } }</c>.
    /// </summary>
    private static Dictionary<string, Releases.ReleaseDefinition> LoadReleases(LoadContext ctx, YNode? node, bool strict)
    {
        var result = new Dictionary<string, Releases.ReleaseDefinition>(StringComparer.Ordinal);
        if (node is not { } n || n.IsNull) return result;
        var m = YMap.Open(n, ctx.Problems, "a mapping of workflow names to releases");
        if (m is null) return result;
        foreach (var name in m.Keys.ToList())
        {
            if (!WorkflowName().IsMatch(name))
            {
                ctx.Problems.Add(m.KeyNode(name)!.Value, $"'{name}' is not a workflow name ([a-z0-9-])");
                continue;
            }

            var r = YMap.Open(m.Get(name)!.Value, ctx.Problems, "a release ({ stable, canary, shadow })");
            if (r is null) continue;
            var stable = r.Int("stable", min: 1);
            Releases.CanaryDefinition? canary = null;
            if (r.Get("canary") is { } cn && !cn.IsNull && YMap.Open(cn, ctx.Problems, "{ version, share, min_jobs, rollback_when }") is { } c)
            {
                var version = c.Int("version", required: true, min: 1);
                var share = c.Number("share", required: true, min: 0, max: 1);
                var minJobs = c.Int("min_jobs", min: 1) ?? 20;
                double? failure = null, rejection = null, cost = null;
                if (c.Get("rollback_when") is { } bn && !bn.IsNull && YMap.Open(bn, ctx.Problems, "{ failure_rate, gate_rejection_rate, cost_per_job }") is { } b)
                {
                    failure = b.Number("failure_rate", min: 0, max: 1);
                    rejection = b.Number("gate_rejection_rate", min: 0, max: 1);
                    cost = b.Number("cost_per_job", min: 0);
                    b.RejectUnknown();
                }

                c.RejectUnknown();
                if (version is { } v && share is { } s)
                {
                    if (stable == v) ctx.Problems.Add(c.Get("version")!.Value, $"the canary of '{name}' is its stable version {v}");
                    canary = new Releases.CanaryDefinition(v, s, minJobs, failure, rejection, cost);
                }
            }

            Releases.ShadowDefinition? shadow = null;
            if (r.Get("shadow") is { } sn && !sn.IsNull && YMap.Open(sn, ctx.Problems, "{ version, share }") is { } sh)
            {
                var version = sh.Int("version", required: true, min: 1);
                var share = sh.Number("share", min: 0, max: 1) ?? 1.0;
                sh.RejectUnknown();
                if (version is { } v)
                {
                    // A shadow of the stable version would compare production with itself, in dry run.
                    if (strict && stable == v) ctx.Problems.Add(sh.Get("version")!.Value, $"the shadow of '{name}' is its stable version {v}");
                    shadow = new Releases.ShadowDefinition(v, share);
                }
            }

            r.RejectUnknown();
            result[name] = new Releases.ReleaseDefinition
            {
                Workflow = name, Stable = stable, Canary = canary, Shadow = shadow,
                Source = new Releases.ReleaseSource(
                    Location(m.KeyNode(name)!.Value),
                    r.Get("stable") is { } st && !st.IsNull ? Location(st) : null,
                    canary is null ? null : Location(r.Get("canary")!.Value.Find("version")!.Value),
                    shadow is null ? null : Location(r.Get("shadow")!.Value.Find("version")!.Value)),
            };
        }

        return result;
    }

    [System.Text.RegularExpressions.GeneratedRegex("^[a-z0-9][a-z0-9-]*$")]
    private static partial System.Text.RegularExpressions.Regex WorkflowName();

    private static SourceLocation Location(YNode node) => new(node.File, node.Line, node.Column, node.Path);

    private static IEnumerable<(string File, YNode At)> Files(LoadContext ctx, YMap map, string key)
    {
        var node = map.Get(key);
        if (node is not { } n || n.IsNull) yield break;
        if (n.IsScalar)
        {
            yield return (n.Scalar!, n);
            yield break;
        }

        if (!n.IsSequence)
        {
            ctx.Problems.Add(n, $"expected a list of files, found {n.Describe()}");
            yield break;
        }

        foreach (var item in n.Items())
        {
            if (item.IsScalar && !item.IsNull) yield return (item.Scalar!, item);
            else ctx.Problems.Add(item, $"expected a file name, found {item.Describe()}");
        }
    }

    private static StorageSettings? LoadStorage(LoadContext ctx, YNode? node, string baseDir)
    {
        if (node is not { } n || n.IsNull) return null;
        var m = YMap.Open(n, ctx.Problems);
        if (m is null) return null;
        var sqlite = ctx.ResolveEnv(n, m.String("sqlite"));
        var postgres = ctx.ResolveEnv(n, m.String("postgres"));
        var durability = m.Enum("durability", ["normal", "full"]) ?? "normal";
        m.RejectUnknown();
        if (sqlite is not null && postgres is not null)
        {
            ctx.Problems.Add(n, "storage takes either 'sqlite' or 'postgres', not both");
        }

        return new StorageSettings { Sqlite = sqlite is null ? null : LoadContext.Resolve(baseDir, sqlite), Postgres = postgres, Durability = durability };
    }

    private static AuditSettings? LoadAudit(LoadContext ctx, YNode? node, string baseDir)
    {
        if (node is not { } n || n.IsNull) return null;
        var m = YMap.Open(n, ctx.Problems);
        if (m is null) return null;
        var key = ctx.ResolveEnv(n, m.String("key"));
        m.RejectUnknown();
        return new AuditSettings { Key = key is null ? null : LoadContext.Resolve(baseDir, key) };
    }

    private static (Dictionary<string, ModelTier>, Dictionary<string, string>) LoadModels(LoadContext ctx, YNode? node, string baseDir)
    {
        var tiers = new Dictionary<string, ModelTier>(StringComparer.Ordinal);
        var fallback = new Dictionary<string, string>(StringComparer.Ordinal);
        if (node is not { } n || n.IsNull) return (tiers, fallback);
        var m = YMap.Open(n, ctx.Problems, "a mapping of model tiers");
        if (m is null) return (tiers, fallback);
        foreach (var key in m.Keys.ToList())
        {
            var value = m.Get(key)!.Value;
            if (key == "fallback")
            {
                var fm = YMap.Open(value, ctx.Problems, "a mapping of tier: fallback tier");
                if (fm is null) continue;
                foreach (var from in fm.Keys.ToList())
                {
                    if (fm.String(from) is { } to) fallback[from] = to;
                }

                continue;
            }

            if (value.IsSequence)
            {
                // Alternatives (an extension): the first whose when_env variable is set, or that has none, is the tier.
                if (ChooseAlternative(ctx, key, value) is not { } chosen) continue;
                value = chosen;
            }

            var tier = LoadTier(ctx, key, value, baseDir);
            if (tier is not null) tiers[key] = tier;
        }

        foreach (var (from, to) in fallback)
        {
            if (!tiers.ContainsKey(from)) ctx.Problems.Add(n, $"fallback names tier '{from}', which is not defined");
            if (!tiers.ContainsKey(to)) ctx.Problems.Add(n, $"fallback names tier '{to}', which is not defined");
        }

        return (tiers, fallback);
    }

    private static YNode? ChooseAlternative(LoadContext ctx, string name, YNode list)
    {
        var items = list.Items().ToList();
        foreach (var item in items)
        {
            var m = YMap.Open(item, ctx.Problems, "a model tier ({ provider, model, … })");
            if (m is null) return null;
            if (m.Get("when_env") is not { } when || when.IsNull) return item;
            if (!when.IsScalar || !System.Text.RegularExpressions.Regex.IsMatch(when.Scalar!, "^[A-Za-z_][A-Za-z0-9_]*$"))
            {
                ctx.Problems.Add(when, $"expected the name of an environment variable, found {when.Describe()}");
                return null;
            }

            if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable(when.Scalar!))) return item;
        }

        ctx.Problems.Add(list, items.Count == 0
            ? $"model tier '{name}' is an empty list of alternatives"
            : $"no alternative of model tier '{name}' applies: set {string.Join(" or ", items.Select(i => YMap.Open(i, ctx.Problems, "")?.String("when_env")).OfType<string>())}, or end the list with one without 'when_env'");
        return null;
    }

    private static ModelTier? LoadTier(LoadContext ctx, string name, YNode node, string baseDir)
    {
        ctx.CheckSecretLengths(node);
        var m = YMap.Open(node, ctx.Problems, "a model tier ({ provider, model, … })");
        if (m is null) return null;
        m.Get("when_env");
        var provider = m.Enum("provider", Providers, required: true);
        var model = m.Get("model") is { } modelNode ? ctx.ResolveEnv(modelNode, m.String("model")) : null;
        var endpoint = m.String("endpoint");
        var apiKey = m.String("api_key");
        decimal inPrice = 0, outPrice = 0;
        if (m.Get("price") is { } priceNode && !priceNode.IsNull)
        {
            var pm = YMap.Open(priceNode, ctx.Problems, "{ input_per_1k, output_per_1k }");
            if (pm is not null)
            {
                inPrice = (decimal)(pm.Number("input_per_1k", min: 0) ?? 0);
                outPrice = (decimal)(pm.Number("output_per_1k", min: 0) ?? 0);
                pm.RejectUnknown();
            }
        }

        var timeout = m.Duration("timeout", positive: true) ?? TimeSpan.FromSeconds(60);
        var maxOutput = m.Int("max_output_tokens", min: 1);
        var breaker = LoadBreaker(ctx, m.Get("circuit_breaker"), null) ?? CircuitBreakerSettings.Default;
        ScriptedFixtures? fixtures = null;
        var fixturesFile = m.String("fixtures");
        if (provider == "scripted")
        {
            if (fixturesFile is null)
            {
                ctx.Problems.Add(node, $"model tier '{name}' uses the scripted provider and needs 'fixtures: FILE'");
            }
            else
            {
                fixtures = LoadFixtures(ctx, LoadContext.Resolve(baseDir, fixturesFile), m.Get("fixtures")!.Value);
            }
        }
        else if (fixturesFile is not null)
        {
            ctx.Problems.Add(m.Get("fixtures")!.Value, "'fixtures' applies only to the scripted provider");
        }
        else if (string.IsNullOrEmpty(model))
        {
            ctx.Problems.Add(node, $"model tier '{name}' needs 'model'");
        }

        m.RejectUnknown();
        if (provider is null) return null;
        return new ModelTier
        {
            Name = name, Provider = provider, Model = model ?? (provider == "scripted" ? "scripted" : ""), Endpoint = endpoint, ApiKey = apiKey,
            InputPer1K = inPrice, OutputPer1K = outPrice, Fixtures = fixtures, Timeout = timeout, MaxOutputTokens = maxOutput, CircuitBreaker = breaker,
        };
    }

    private static ScriptedFixtures? LoadFixtures(LoadContext ctx, string path, YNode at)
    {
        var root = ctx.LoadYaml(path, at, "fixtures file");
        if (root is null) return null;
        var m = YMap.Open(root.Value, ctx.Problems, "a mapping with 'responses:'");
        if (m is null) return null;
        var list = m.Required("responses");
        m.RejectUnknown();
        if (list is not { } l) return null;
        if (!l.IsSequence)
        {
            ctx.Problems.Add(l, $"expected a list of responses, found {l.Describe()}");
            return null;
        }

        var responses = new List<ScriptedResponse>();
        foreach (var item in l.Items())
        {
            var r = YMap.Open(item, ctx.Problems, "a response ({ agent, content } or { agent, error })");
            if (r is null) continue;
            var agent = r.String("agent", required: true);
            var attempt = r.Int("attempt", min: 1);
            var round = r.Int("round", min: 1);
            var when = ctx.Condition(r.Get("when"));
            var toolCalls = LoadScriptedToolCalls(ctx, r.Get("tool_calls"));
            string? content = null;
            if (r.Get("content") is { } c && !c.IsNull)
            {
                content = c.IsScalar ? c.Scalar : YamlJson.ToElement(c).GetRawText();
            }

            var error = r.Enum("error", FixtureErrors);
            long inTok = 0, outTok = 0;
            if (r.Get("usage") is { } u && !u.IsNull)
            {
                var um = YMap.Open(u, ctx.Problems, "{ input_tokens, output_tokens }");
                if (um is not null)
                {
                    inTok = um.Int("input_tokens", min: 0) ?? 0;
                    outTok = um.Int("output_tokens", min: 0) ?? 0;
                    um.RejectUnknown();
                }
            }

            r.RejectUnknown();
            if ((content is null ? 0 : 1) + (error is null ? 0 : 1) + (r.Has("tool_calls") ? 1 : 0) != 1)
            {
                ctx.Problems.Add(item, "a response needs exactly one of 'content', 'error' or 'tool_calls'");
                continue;
            }

            if (agent is null || (r.Has("tool_calls") && toolCalls is null)) continue;
            responses.Add(new ScriptedResponse
            {
                Agent = agent, Attempt = attempt, Round = round, When = when, Content = content, Error = error, ToolCalls = toolCalls,
                InputTokens = inTok, OutputTokens = outTok, Location = $"{item.File}:{item.Line}:{item.Column}",
            });
        }

        return new ScriptedFixtures { File = ctx.Files.Display(path), Responses = responses };
    }

    private static List<ScriptedToolCall>? LoadScriptedToolCalls(LoadContext ctx, YNode? node)
    {
        if (node is not { } n) return null;
        if (!n.IsSequence || !n.Items().Any())
        {
            ctx.Problems.Add(n, $"expected a non-empty list of {{ tool, args }}, found {n.Describe()}");
            return null;
        }

        var calls = new List<ScriptedToolCall>();
        foreach (var item in n.Items())
        {
            var c = YMap.Open(item, ctx.Problems, "a tool call ({ tool, args })");
            if (c is null) return null;
            var tool = c.String("tool", required: true);
            var args = c.Get("args") is { } a && !a.IsNull ? YamlJson.ToElement(a) : JsonElementFactory.EmptyObject;
            if (c.Get("args") is { } an && !an.IsNull && args.ValueKind != System.Text.Json.JsonValueKind.Object)
            {
                ctx.Problems.Add(an, $"expected the arguments as a mapping, found {an.Describe()}");
                return null;
            }

            c.RejectUnknown();
            if (tool is null) return null;
            calls.Add(new ScriptedToolCall(tool, args));
        }

        return calls;
    }

    private static Dictionary<string, ConnectionDefinition> LoadConnections(LoadContext ctx, YNode? node, string baseDir)
    {
        var result = new Dictionary<string, ConnectionDefinition>(StringComparer.Ordinal);
        if (node is not { } n || n.IsNull) return result;
        var m = YMap.Open(n, ctx.Problems, "a mapping of connections");
        if (m is null) return result;
        foreach (var name in m.Keys.ToList())
        {
            var c = YMap.Open(m.Get(name)!.Value, ctx.Problems, "{ sqlite: FILE } or { postgres: CONNSTR }");
            if (c is null) continue;
            var sqlite = ctx.ResolveEnv(c.Node, c.String("sqlite"));
            var postgres = ctx.ResolveEnv(c.Node, c.String("postgres"));
            string? init = null;
            if (c.String("init") is { } initFile)
            {
                var initPath = LoadContext.Resolve(baseDir, initFile);
                init = ctx.Files.Read(initPath);
                if (init is null) ctx.Problems.Add(c.Get("init")!.Value, $"init file '{ctx.Files.Display(initPath)}' does not exist");
            }

            c.RejectUnknown();
            if ((sqlite is null) == (postgres is null))
            {
                ctx.Problems.Add(c.Node, $"connection '{name}' needs exactly one of 'sqlite' or 'postgres'");
                continue;
            }

            result[name] = sqlite is not null
                ? new ConnectionDefinition { Name = name, Provider = "sqlite", Target = LoadContext.Resolve(baseDir, sqlite), InitSql = init }
                : new ConnectionDefinition { Name = name, Provider = "postgres", Target = postgres!, InitSql = init };
        }

        return result;
    }

    private static Dictionary<string, McpServerDefinition> LoadMcpServers(LoadContext ctx, YNode? node, string baseDir)
    {
        var result = new Dictionary<string, McpServerDefinition>(StringComparer.Ordinal);
        if (node is not { } n || n.IsNull) return result;
        var m = YMap.Open(n, ctx.Problems, "a mapping of MCP servers");
        if (m is null) return result;
        foreach (var name in m.Keys.ToList())
        {
            var s = YMap.Open(m.Get(name)!.Value, ctx.Problems, "{ command: [...] } or { url: URL }");
            if (s is null) continue;
            var command = s.StringList("command");
            var url = s.String("url");
            var env = new Dictionary<string, string>(StringComparer.Ordinal);
            if (s.Get("env") is { } en && !en.IsNull)
            {
                var em = YMap.Open(en, ctx.Problems, "a mapping of NAME: value");
                if (em is not null)
                {
                    foreach (var key in em.Keys.ToList())
                    {
                        if (ctx.ResolveEnv(em.Get(key)!.Value, em.String(key)) is { } value) env[key] = value;
                    }
                }

                if (url is not null)
                {
                    ctx.Problems.Add(en, $"MCP server '{name}': 'env' applies to a server started with 'command', not to one reached by 'url'");
                }
            }

            if (url is not null && !LoadContext.IsHttpUrl(url))
            {
                ctx.Problems.Add(s.Get("url")!.Value, $"'{url}' is not an absolute http(s) URL");
            }

            s.RejectUnknown();
            if ((command is null) == (url is null))
            {
                ctx.Problems.Add(s.Node, $"MCP server '{name}' needs exactly one of 'command' or 'url'");
                continue;
            }

            if (command is { Count: 0 } || command?.Any(string.IsNullOrWhiteSpace) == true)
            {
                ctx.Problems.Add(s.Get("command")!.Value, $"MCP server '{name}': 'command' needs the program and its arguments, none of them empty");
                continue;
            }

            // A program named by a relative path is the project's own (./servers/docs.js); a bare name is looked up on PATH.
            if (command is not null && !Path.IsPathRooted(command[0]) && (command[0].Contains('/', StringComparison.Ordinal) || command[0].Contains('\\', StringComparison.Ordinal)))
            {
                command = [LoadContext.Resolve(baseDir, command[0]), .. command.Skip(1)];
            }

            result[name] = new McpServerDefinition { Name = name, Command = command, Url = url, Env = env, WorkingDirectory = baseDir };
        }

        return result;
    }

    private static Dictionary<string, TenantDefinition> LoadTenants(LoadContext ctx, YNode? node)
    {
        var result = new Dictionary<string, TenantDefinition>(StringComparer.Ordinal);
        // A key acts for one tenant as one identity: the same hash listed twice would make that ambiguous.
        var keyOwners = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        if (node is not { } n || n.IsNull) return result;
        var m = YMap.Open(n, ctx.Problems, "a mapping of tenants");
        if (m is null) return result;
        foreach (var name in m.Keys.ToList())
        {
            var t = YMap.Open(m.Get(name)!.Value, ctx.Problems, "a tenant ({ api_keys, roles, quota })");
            if (t is null) continue;
            var keys = new List<string>();
            var keyIdentities = new List<TenantApiKey>();
            if (t.Get("api_keys") is { } kn && !kn.IsNull)
            {
                // "sha256:HEX" (identity api-key) or { identity, hash }; a single entry may stand for a list of one.
                foreach (var item in kn.IsSequence ? kn.Items() : [kn])
                {
                    string? hash, identity = "api-key";
                    if (item.IsMapping)
                    {
                        var km = YMap.Open(item, ctx.Problems, "{ identity, hash }");
                        if (km is null) continue;
                        identity = km.String("identity", required: true);
                        hash = km.String("hash", required: true);
                        km.RejectUnknown();
                    }
                    else if (item.IsScalar && !item.IsNull)
                    {
                        hash = item.Scalar!;
                    }
                    else
                    {
                        ctx.Problems.Add(item, $"expected an API key hash ('sha256:HEX') or {{ identity, hash }}, found {item.Describe()}");
                        continue;
                    }

                    if (hash is null || identity is null) continue;
                    if (!ApiKeyHash().IsMatch(hash))
                    {
                        ctx.Problems.Add(item.IsMapping ? item : kn, $"API key entries must be 'sha256:' followed by 64 hex digits (the hash of the key), found '{Truncate(hash)}'");
                        continue;
                    }

                    if (string.IsNullOrWhiteSpace(identity))
                    {
                        ctx.Problems.Add(item, "an API key's identity must not be empty");
                        continue;
                    }

                    if (!keyOwners.TryAdd(hash, name))
                    {
                        ctx.Problems.Add(item, keyOwners[hash] == name
                            ? $"this API key hash is listed twice under tenant '{name}': a key acts as one identity"
                            : $"this API key hash is listed under tenants '{keyOwners[hash]}' and '{name}': a key acts for one tenant");
                        continue;
                    }

                    keys.Add(hash);
                    keyIdentities.Add(new TenantApiKey(identity.Trim(), hash.ToLowerInvariant()));
                }
            }

            var roles = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
            if (t.Get("roles") is { } rn && !rn.IsNull)
            {
                var rm = YMap.Open(rn, ctx.Problems, "a mapping of identity: [roles]");
                if (rm is not null)
                {
                    foreach (var who in rm.Keys.ToList())
                    {
                        roles[who] = rm.StringList(who) ?? [];
                    }
                }
            }

            int? concurrent = null, perMinute = null;
            if (t.Get("quota") is { } qn && !qn.IsNull)
            {
                var qm = YMap.Open(qn, ctx.Problems, "{ concurrent_jobs, jobs_per_minute }");
                if (qm is not null)
                {
                    concurrent = qm.Int("concurrent_jobs", min: 1);
                    perMinute = qm.Int("jobs_per_minute", min: 1);
                    qm.RejectUnknown();
                }
            }

            t.RejectUnknown();
            result[name] = new TenantDefinition { Name = name, ApiKeys = keys, Keys = keyIdentities, Roles = roles, HasRoles = t.Has("roles"), ConcurrentJobs = concurrent, JobsPerMinute = perMinute };
        }

        return result;
    }

    private static string Truncate(string s) => s.Length <= 12 ? s : s[..12] + "…";

    private static async Task LoadToolsFileAsync(LoadContext ctx, string path, YNode at, Dictionary<string, ToolDefinition> tools, IReadOnlyDictionary<string, ConnectionDefinition> connections, IReadOnlyDictionary<string, McpServerDefinition> mcp)
    {
        var root = ctx.LoadYaml(path, at, "tools file");
        if (root is null) return;
        var m = YMap.Open(root.Value, ctx.Problems, "a mapping with 'tools:'");
        if (m is null) return;
        var baseDir = Path.GetDirectoryName(path)!;
        var defaults = LoadToolDefaults(ctx, m.Get("defaults"));
        var toolsNode = m.Required("tools");
        m.RejectUnknown();
        if (toolsNode is not { } tn) return;
        var tm = YMap.Open(tn, ctx.Problems, "a mapping of tool name: definition");
        if (tm is null) return;
        foreach (var name in tm.Keys.ToList())
        {
            var node = tm.Get(name)!.Value;
            if (!ToolName().IsMatch(name))
            {
                ctx.Problems.Add(tm.KeyNode(name) ?? node, $"'{name}' is not a valid tool name (letters, digits, '.', '_', '-')");
                continue;
            }

            if (tools.ContainsKey(name))
            {
                ctx.Problems.Add(tm.KeyNode(name) ?? node, $"tool '{name}' is defined twice");
                continue;
            }

            var tool = await LoadToolAsync(ctx, name, node, baseDir, defaults, connections, mcp).ConfigureAwait(false);
            if (tool is not null) tools[name] = tool;
        }
    }

    private sealed record ToolDefaults(TimeSpan? Timeout, ToolRetrySettings? Retry, CircuitBreakerSettings? Breaker, RateLimitSettings? RateLimit);

    private static ToolDefaults LoadToolDefaults(LoadContext ctx, YNode? node)
    {
        if (node is not { } n || n.IsNull) return new ToolDefaults(null, null, null, null);
        var m = YMap.Open(n, ctx.Problems, "{ timeout, retry, circuit_breaker, rate_limit }");
        if (m is null) return new ToolDefaults(null, null, null, null);
        var d = new ToolDefaults(m.Duration("timeout", positive: true), LoadToolRetry(ctx, m.Get("retry"), null), LoadBreaker(ctx, m.Get("circuit_breaker"), null), LoadRateLimit(ctx, m.Get("rate_limit")));
        m.RejectUnknown();
        return d;
    }

    private static ToolRetrySettings? LoadToolRetry(LoadContext ctx, YNode? node, ToolRetrySettings? fallback)
    {
        if (node is not { } n || n.IsNull) return fallback;
        var m = YMap.Open(n, ctx.Problems, "{ max_attempts, backoff, max_backoff }");
        if (m is null) return fallback;
        var baseline = fallback ?? ToolRetrySettings.Default;
        var r = new ToolRetrySettings(m.Int("max_attempts", min: 1, max: 100) ?? baseline.MaxAttempts, m.Duration("backoff") ?? baseline.Backoff, m.Duration("max_backoff") ?? baseline.MaxBackoff);
        m.RejectUnknown();
        return r;
    }

    private static CircuitBreakerSettings? LoadBreaker(LoadContext ctx, YNode? node, CircuitBreakerSettings? fallback)
    {
        if (node is not { } n || n.IsNull) return fallback;
        var m = YMap.Open(n, ctx.Problems, "{ failure_ratio, min_calls, break }");
        if (m is null) return fallback;
        var baseline = fallback ?? CircuitBreakerSettings.Default;
        var r = new CircuitBreakerSettings(
            m.Number("failure_ratio", min: 0.01, max: 1) ?? baseline.FailureRatio,
            m.Int("min_calls", min: 1) ?? baseline.MinCalls,
            m.Duration("break") ?? baseline.Break,
            m.Duration("sampling") ?? baseline.SamplingDuration);
        m.RejectUnknown();
        return r;
    }

    private static RateLimitSettings? LoadRateLimit(LoadContext ctx, YNode? node)
    {
        if (node is not { } n || n.IsNull) return null;
        var m = YMap.Open(n, ctx.Problems, "{ per_job, per_tenant_per_minute }");
        if (m is null) return null;
        var r = new RateLimitSettings(m.Int("per_job", min: 1), m.Int("per_tenant_per_minute", min: 1));
        m.RejectUnknown();
        return r;
    }

    private static async Task<ToolDefinition?> LoadToolAsync(LoadContext ctx, string name, YNode node, string baseDir, ToolDefaults defaults, IReadOnlyDictionary<string, ConnectionDefinition> connections, IReadOnlyDictionary<string, McpServerDefinition> mcp)
    {
        ctx.CheckSecretLengths(node);
        var m = YMap.Open(node, ctx.Problems, "a tool definition ({ kind, … })");
        if (m is null) return null;
        var kind = m.Enum("kind", ToolKinds, required: true);
        var effect = m.Enum("effect", Effects) ?? "write";
        var args = m.Get("args") is { } a && !a.IsNull ? await ctx.LoadSchemaAsync(a, baseDir).ConfigureAwait(false) : null;
        var result = m.Get("result") is { } r && !r.IsNull ? await ctx.LoadSchemaAsync(r, baseDir).ConfigureAwait(false) : null;
        var timeout = m.Duration("timeout", positive: true) ?? defaults.Timeout ?? TimeSpan.FromSeconds(10);
        var retry = LoadToolRetry(ctx, m.Get("retry"), defaults.Retry) ?? ToolRetrySettings.Default;
        var breaker = LoadBreaker(ctx, m.Get("circuit_breaker"), defaults.Breaker) ?? CircuitBreakerSettings.Default;
        var rate = LoadRateLimit(ctx, m.Get("rate_limit")) ?? defaults.RateLimit;
        var cache = m.Duration("cache");
        if (cache is not null && effect != "read")
        {
            ctx.Problems.Add(m.Get("cache")!.Value, "'cache' applies only to tools with effect: read");
        }

        IReadOnlyList<string>? allowAgents = null, allowTenants = null;
        if (m.Get("allow") is { } al && !al.IsNull)
        {
            var am = YMap.Open(al, ctx.Problems, "{ agents: [...], tenants: [...] }");
            if (am is not null)
            {
                allowAgents = am.StringList("agents");
                allowTenants = am.StringList("tenants");
                am.RejectUnknown();
            }
        }

        var description = m.String("description");
        string? connection = null, query = null, url = null, server = null, mcpTool = null, type = null;
        var method = "POST";
        var maxRows = ToolDefinition.DefaultMaxRows;
        var maxResultBytes = ToolDefinition.DefaultMaxResultBytes;
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var redirects = HttpRedirects.SameOrigin;
        var maxResponseBytes = ToolDefinition.DefaultMaxResponseBytes;
        IReadOnlyList<string> allowAddresses = [];
        switch (kind)
        {
            case "sql":
                connection = m.String("connection", required: true);
                query = m.String("query", required: true);
                if (connection is not null && !connections.ContainsKey(connection))
                {
                    ctx.Problems.Add(m.Get("connection")!.Value, $"connection '{connection}' is not defined under 'connections' in ordo.yaml");
                }

                maxRows = m.Int("max_rows", min: 1) ?? maxRows;
                maxResultBytes = m.Int("max_result_bytes", min: 1, max: (int)ToolDefinition.MaxResultBytesCeiling) ?? maxResultBytes;
                break;
            case "http":
                method = (m.Enum("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "get", "post", "put", "patch", "delete"]) ?? "POST").ToUpperInvariant();
                url = m.String("url", required: true);
                if (url is not null && PlaceholderPattern().IsMatch(UrlOrigin(url)))
                {
                    // An argument that chooses the scheme, host or port chooses where the request and its secret headers go.
                    ctx.Problems.Add(m.Get("url")!.Value,
                        $"'{url}': a placeholder cannot be part of the URL's scheme, host or port (arguments would choose where the request and its headers go); use placeholders in the path or query only");
                }
                else if (url is not null && !LoadContext.IsHttpUrl(PlaceholderPattern().Replace(url, "x")))
                {
                    ctx.Problems.Add(m.Get("url")!.Value, $"'{url}' is not an absolute URL");
                }

                if (m.Get("headers") is { } hn && !hn.IsNull)
                {
                    var hm = YMap.Open(hn, ctx.Problems, "a mapping of header: value");
                    if (hm is not null)
                    {
                        foreach (var h in hm.Keys.ToList())
                        {
                            if (hm.String(h) is { } hv) headers[h] = hv;
                        }
                    }
                }

                redirects = m.Enum("redirects", RedirectModes) switch
                {
                    "none" => HttpRedirects.None,
                    "any" => HttpRedirects.Any,
                    _ => HttpRedirects.SameOrigin,
                };
                maxResponseBytes = m.Int("max_response_bytes", min: 1, max: (int)ToolDefinition.MaxResponseBytesCeiling) ?? ToolDefinition.DefaultMaxResponseBytes;
                allowAddresses = LoadAllowAddresses(ctx, m.Get("allow_addresses"));
                break;
            case "mcp":
                server = m.String("server", required: true);
                mcpTool = m.String("tool", required: true);
                if (server is not null && !mcp.ContainsKey(server))
                {
                    ctx.Problems.Add(m.Get("server")!.Value, $"MCP server '{server}' is not defined under 'mcp_servers' in ordo.yaml");
                }

                maxResultBytes = m.Int("max_result_bytes", min: 1, max: (int)ToolDefinition.MaxResultBytesCeiling) ?? maxResultBytes;
                break;
            case "code":
                type = m.String("type");
                var lookup = type ?? name;
                if (ctx.Options.CodeToolExists is { } exists && !exists(lookup))
                {
                    ctx.Problems.Add(node, $"code tool '{lookup}' is not registered (register it in C# or load it from a plugin)");
                }

                maxResultBytes = m.Int("max_result_bytes", min: 1, max: (int)ToolDefinition.MaxResultBytesCeiling) ?? maxResultBytes;
                break;
            default:
                // Without a (valid) kind the keys of every kind are accepted; only the kind itself is reported.
                foreach (var key in new[] { "connection", "query", "max_rows", "max_result_bytes", "method", "url", "headers", "redirects", "max_response_bytes", "allow_addresses", "server", "tool", "type" }) m.Get(key);
                break;
        }

        m.RejectUnknown();
        if (kind is null) return null;
        return new ToolDefinition
        {
            Name = name, Kind = kind, Effect = Enum.Parse<ToolEffect>(effect, ignoreCase: true), Args = args, Result = result,
            Timeout = timeout, Retry = retry, CircuitBreaker = breaker, RateLimit = rate, Cache = cache,
            AllowAgents = allowAgents, AllowTenants = allowTenants, Description = description,
            Connection = connection, Query = query, MaxRows = maxRows, MaxResultBytes = maxResultBytes, Method = method, Url = url, Headers = headers,
            Redirects = redirects, MaxResponseBytes = maxResponseBytes, AllowAddresses = allowAddresses, Server = server, McpTool = mcpTool, Type = type,
        };
    }

    /// <summary>An http tool's <c>allow_addresses</c>: IP addresses, networks (CIDR) and host names, each checked where it is written.</summary>
    private static IReadOnlyList<string> LoadAllowAddresses(LoadContext ctx, YNode? node)
    {
        if (node is not { } n || n.IsNull) return [];
        if (!n.IsScalar && !n.IsSequence)
        {
            ctx.Problems.Add(n, $"expected a list of addresses, networks or host names, found {n.Describe()}");
            return [];
        }

        var list = new List<string>();
        foreach (var item in n.IsScalar ? [n] : n.Items())
        {
            if (!item.IsScalar || item.IsNull)
            {
                ctx.Problems.Add(item, $"expected an address, a network or a host name, found {item.Describe()}");
            }
            else if (HttpAddressRules.Validate(item.Scalar!) is { } error)
            {
                ctx.Problems.Add(item, error);
            }
            else
            {
                list.Add(item.Scalar!.Trim());
            }
        }

        return list;
    }

    /// <summary>The scheme and authority of an http tool's URL template: everything before its path, query or fragment.</summary>
    private static string UrlOrigin(string url)
    {
        var authority = url.IndexOf("://", StringComparison.Ordinal);
        var start = authority < 0 ? 0 : authority + 3;
        var end = url.IndexOfAny(['/', '?', '#'], start);
        return end < 0 ? url : url[..end];
    }

    [GeneratedRegex(@"^[A-Za-z0-9_.\-]+$")]
    private static partial Regex ToolName();

    [GeneratedRegex(@"\{[^}]*\}")]
    private static partial Regex PlaceholderPattern();

    [GeneratedRegex("^sha256:[0-9a-fA-F]{64}$")]
    private static partial Regex ApiKeyHash();

    internal static string Invariant(double d) => d.ToString(CultureInfo.InvariantCulture);
}
