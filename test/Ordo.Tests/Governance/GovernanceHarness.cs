using System.Text.Json;
using Ordo.Agents;
using Ordo.Engine;
using Ordo.Events;
using Ordo.Gateway;
using Ordo.State;
using Ordo.Storage;
using Ordo.Testing;
using Ordo.Tools;
using Ordo.Workflows;

namespace Ordo.Tests.Governance;

/// <summary>Writes a project (workflow, ordo.yaml, tools, policies, fixtures) to a temporary folder and runs it on a runtime.</summary>
internal sealed class GovernanceHarness : IAsyncDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "ordo-gov-" + Guid.NewGuid().ToString("N"));

    public GovernanceHarness(Dictionary<string, string>? secrets = null, OrdoRuntimeOptions? options = null, IOrdoStore? store = null, IToolExecutor? executor = null)
    {
        Directory.CreateDirectory(_dir);
        Store = store ?? new InMemoryOrdoStore();
        Code = new CodeRegistry();
        Secrets = secrets;
        Options = options ?? new OrdoRuntimeOptions { Workers = 2, PollInterval = TimeSpan.FromMilliseconds(5), KillSwitchRefresh = TimeSpan.Zero };
        Runtime = new OrdoRuntime(Store, Options, new OrdoComponents
        {
            Code = Code,
            ToolExecutors = executor is null ? [] : [executor],
            Secrets = new SecretResolver(name => secrets is not null && secrets.TryGetValue(name, out var v) ? v : null),
        });
    }

    public string Dir => _dir;
    public IOrdoStore Store { get; }
    public CodeRegistry Code { get; }
    public Dictionary<string, string>? Secrets { get; }
    public OrdoRuntimeOptions Options { get; }
    public OrdoRuntime Runtime { get; }

    public void Write(string name, string content)
    {
        var path = Path.Combine(_dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
    }

    public Task<WorkflowDefinition> LoadAsync(string workflow = "workflow.yaml")
        => WorkflowLoader.LoadFileAsync(Path.Combine(_dir, workflow), options: Runtime.LoadOptions);

    public async Task<JobState> RunAsync(WorkflowDefinition workflow, object? input = null, string submitter = "alice", string tenant = "default")
    {
        var job = await Runtime.SubmitAsync(workflow, input is null ? null : Json.Of(input), new SubmitOptions { Submitter = submitter, Tenant = tenant });
        return await ContinueAsync(job.JobId);
    }

    public async Task<JobState> ContinueAsync(JobId id)
    {
        await Runtime.RunAsync(new RunRequest { RootJobId = id, UntilIdle = true }).WaitAsync(TimeSpan.FromSeconds(60));
        return (await Runtime.GetStateAsync(id))!;
    }

    public async Task<List<EventEnvelope>> EventsAsync(JobId id)
    {
        var list = new List<EventEnvelope>();
        await foreach (var e in Store.ReadEventsAsync(id)) list.Add(e);
        return list;
    }

    public void AddCodeTool(string name, Func<ToolInvocation, JsonElement> run)
        => Code.AddTool(name, _ => new DelegateCodeTool((inv, _) => ValueTask.FromResult(run(inv))));

    public void AddCodeAgent(string type, Func<AgentContext, CancellationToken, Task<JsonElement>> run)
        => Code.AddAgent(type, _ => new LambdaAgent(run));

    public async ValueTask DisposeAsync()
    {
        await Runtime.DisposeAsync();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private sealed class LambdaAgent(Func<AgentContext, CancellationToken, Task<JsonElement>> run) : ICodeAgent
    {
        public async ValueTask<JsonElement> InvokeAsync(AgentContext context, CancellationToken cancellationToken) => await run(context, cancellationToken);
    }
}
