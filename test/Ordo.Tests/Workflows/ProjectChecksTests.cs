using Ordo.Configuration;
using Ordo.Workflows;

namespace Ordo.Tests.Workflows;

/// <summary>
/// What ordo.yaml names of the project's workflows and tools: a release's workflow and versions, a fault's tier, tool,
/// agent, failure kind and latency. Each problem names where it is written; nothing is accepted that would later fail
/// every job, or silently inject nothing.
/// </summary>
public sealed class ProjectChecksTests : IDisposable
{
    private readonly TempWorkspace _ws = new();

    public void Dispose() => _ws.Dispose();

    private const string Models = """
        models:
          fast: { provider: scripted, fixtures: fixtures.yaml }
        tools: [tools.yaml]

        """;

    private void WriteWorkflows()
    {
        _ws.Write("fixtures.yaml", "responses:\n  - { agent: classifier, content: '{}' }\n");
        _ws.Write("tools.yaml", "tools:\n  crm.note: { kind: http, method: POST, url: \"http://127.0.0.1:9/notes\", effect: write }\n  crm.lookup: { kind: http, method: GET, url: \"http://127.0.0.1:9/c\", effect: read }\n");
        foreach (var version in new[] { 1, 2 })
        {
            _ws.Write($"flow-v{version}.yaml", $"ordo: 1\nworkflow: flow\nversion: {version}\nagents:\n  classifier: {{ kind: llm, tier: fast, output: label }}\nartifacts:\n  label: {{ schema: {{ type: object }} }}\nsteps:\n  - {{ id: classify, agent: classifier }}\n");
        }
    }

    private async Task<IReadOnlyList<ValidationProblem>> CheckAsync(string config)
    {
        WriteWorkflows();
        _ws.Write("ordo.yaml", Models + config);
        var project = await WorkflowLoader.LoadProjectAsync(_ws.PathOf("ordo.yaml"));
        var outlines = Directory.EnumerateFiles(_ws.Root, "flow-*.yaml").Select(WorkflowOutline.Read).OfType<WorkflowOutline>();
        return ProjectChecks.Check(project, outlines);
    }

    [Theory]
    [InlineData("releases:\n  flow: { stable: 42 }\n", "releases.flow.stable", "the stable version of 'flow' is version 42, which does not exist (versions found: 1, 2)")]
    [InlineData("releases:\n  flow: { stable: 1, canary: { version: 9, share: 1.0 } }\n", "releases.flow.canary.version", "the canary of 'flow' is version 9, which does not exist (versions found: 1, 2)")]
    [InlineData("releases:\n  flow:\n    shadow: { version: 9 }\n", "releases.flow.shadow.version", "the shadow of 'flow' is version 9, which does not exist (versions found: 1, 2)")]
    [InlineData("releases:\n  nosuch: { stable: 1 }\n", "releases.nosuch", "the project has no workflow 'nosuch' to release (its workflows: flow)")]
    [InlineData("faults:\n  models: [ { agent: clasifier, error: timeout } ]\n", "faults.models[0].agent", "no workflow of the project has an agent 'clasifier' (agents: classifier)")]
    public async Task AReleaseOrFault_NamingWhatTheWorkflowsDoNotHave_IsAProblemAtItsKey(string config, string path, string message)
    {
        var problem = Assert.Single(await CheckAsync(config));

        Assert.Equal((path, message), (problem.Path, problem.Message));
        Assert.EndsWith("ordo.yaml", problem.File, StringComparison.Ordinal);
        Assert.True(problem.Line > 3, problem.ToString());
    }

    [Fact]
    public async Task ReleasesAndFaults_OfVersionsAndAgentsThatExist_HaveNoProblem()
    {
        Assert.Empty(await CheckAsync("""
            releases:
              flow: { stable: 1, canary: { version: 2, share: 0.5 } }
            faults:
              models: [ { agent: classifier, tier: fast, error: timeout } ]
              tools: [ { tool: "crm.*", error: connection_error, latency: 1h } ]
            """));
    }

    [Theory]
    [InlineData("releases:\n  flow: { stable: 1, shadow: { version: 1 } }\n", "releases.flow.shadow.version", "the shadow of 'flow' is its stable version 1")]
    [InlineData("faults: { seed: 7, tools: [ { tool: crm.note, latency: 100d } ] }\n", "faults.tools[0].latency", "a fault's latency is at most 1h, found '100d'")]
    [InlineData("faults: { tools: [ { tool: crm.note, latency: 61m } ] }\n", "faults.tools[0].latency", "a fault's latency is at most 1h, found '61m'")]
    [InlineData("faults: { tools: [ { tool: crm.note, error: bogus_kind } ] }\n", "faults.tools[0].error", "'bogus_kind' is not one of: tool_error, timeout, connection_error, rate_limited, server_error, malformed_response")]
    [InlineData("faults: { tools: [ { tool: crm.nte, error: timeout } ] }\n", "faults.tools[0].tool", "there is no tool 'crm.nte' (tools: crm.lookup, crm.note; a name ending in * matches every tool it starts)")]
    [InlineData("faults: { tools: [ { tool: \"pay.*\", error: timeout } ] }\n", "faults.tools[0].tool", "no tool of the project starts with 'pay.' (tools: crm.lookup, crm.note)")]
    [InlineData("faults: { models: [ { tier: fsat, error: timeout } ] }\n", "faults.models[0].tier", "there is no model tier 'fsat' (tiers: fast)")]
    public async Task AConfigThatCannotBeRightAlone_IsAnErrorOfItsLoad(string config, string path, string message)
    {
        WriteWorkflows();
        _ws.Write("ordo.yaml", Models + config);

        var problem = Assert.Single(await _ws.ProjectProblemsAsync());

        Assert.Equal((path, message), (problem.Path, problem.Message));
    }

    [Fact]
    public async Task AStoredDefinition_LoadsAsItWasAcceptedWhenItsJobWasSubmitted()
    {
        // A job recorded before these checks existed must still resume and replay: its stored config is not held to them.
        var bundle = new DefinitionBundle
        {
            Entry = "wf.yaml", Config = "ordo.yaml", Root = _ws.Root,
            Files = new SortedDictionary<string, string>(StringComparer.Ordinal)
            {
                ["wf.yaml"] = "ordo: 1\nworkflow: flow\nversion: 1\nsteps:\n  - { id: hi, transform: { set: { greeting: hi } } }\n",
                ["ordo.yaml"] = "faults: { tools: [ { tool: gone, error: custom_kind, latency: 100d } ], models: [ { tier: gone, error: timeout } ] }\nreleases:\n  flow: { stable: 1, shadow: { version: 1 } }\n",
            },
        };

        var definition = await WorkflowLoader.LoadBundleAsync(bundle);

        var fault = Assert.Single(definition.Project.Faults.Tools);
        Assert.Equal(("custom_kind", TimeSpan.FromDays(100)), (fault.Error, fault.Latency));
        Assert.Equal(1, definition.Project.Releases["flow"].Shadow!.Version);
    }

    [Fact]
    public void TheOutlineOfAFile_IsItsNameVersionAndAgents_AndAFileThatIsNoWorkflowHasNone()
    {
        var flow = _ws.Write("flow.yaml", "ordo: 1\nworkflow: flow\nversion: 3 # pinned\nagents:\n  a: { kind: code, type: X }\n  b: { kind: code, type: Y }\nsteps: []\n");
        var other = _ws.Write("ci.yaml", "on: push\njobs: {}\n");
        var broken = _ws.Write("broken.yaml", "workflow: [\n");

        var outline = WorkflowOutline.Read(flow);
        Assert.NotNull(outline);
        Assert.Equal(("flow", 3), (outline.Name, outline.Version));
        Assert.Equal(["a", "b"], outline.Agents);
        Assert.Null(WorkflowOutline.Read(other));
        Assert.Null(WorkflowOutline.Read(broken));
    }
}
