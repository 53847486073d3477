using System.Collections.Concurrent;
using System.Text.Json;
using Ordo.Agents;
using Ordo.Engine;
using Ordo.Events;
using Ordo.State;
using Ordo.Storage;
using Ordo.Testing;
using Ordo.Workflows;

namespace Ordo.Tests.Patterns;

/// <summary>
/// Writes a project (workflow files, ordo.yaml, fixtures) to a temporary folder and runs it on a runtime whose code
/// agents are C# delegates; counts every agent call and sees every committed event (to gate agents on what the engine
/// recorded, instead of sleeping).
/// </summary>
internal sealed class PatternHarness : IAsyncDisposable
{
    /// <summary>No test waits longer than this for anything: a hang fails the test instead of the suite.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private readonly ConcurrentDictionary<string, int> _calls = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<(string Type, JsonElement Input, StepRef Step)> _inputs = new();
    private readonly EventLog _log = new();
    private readonly List<OrdoRuntime> _runtimes = [];

    public PatternHarness(OrdoRuntimeOptions? options = null, IOrdoStore? store = null)
    {
        Dir = Path.Combine(Path.GetTempPath(), "ordo-patterns-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Dir);
        Store = store ?? new InMemoryOrdoStore();
        Options = options ?? NewOptions();
        Options.Observers.Add(_log);
        Runtime = NewRuntime(Options);
    }

    public string Dir { get; }

    public IOrdoStore Store { get; }

    public CodeRegistry Code { get; } = new();

    public OrdoRuntimeOptions Options { get; }

    public OrdoRuntime Runtime { get; }

    public static OrdoRuntimeOptions NewOptions(int workers = 6, TimeProvider? time = null) => new()
    {
        Workers = workers, PollInterval = TimeSpan.FromMilliseconds(5), KillSwitchRefresh = TimeSpan.Zero, TimeProvider = time ?? TimeProvider.System,
    };

    /// <summary>A second runtime over the same store and code: what a restarted process sees (no cached state or definitions).</summary>
    public OrdoRuntime NewRuntime(OrdoRuntimeOptions options)
    {
        if (!options.Observers.Contains(_log)) options.Observers.Add(_log);
        var runtime = new OrdoRuntime(Store, options, new OrdoComponents { Code = Code });
        _runtimes.Add(runtime);
        return runtime;
    }

    public void Write(string name, string content)
    {
        var path = Path.Combine(Dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
    }

    public Task<WorkflowDefinition> LoadAsync(string workflow = "wf.yaml")
        => WorkflowLoader.LoadFileAsync(Path.Combine(Dir, workflow), options: Runtime.LoadOptions);

    /// <summary>Writes <c>wf.yaml</c> and loads it.</summary>
    public Task<WorkflowDefinition> LoadAsync(string name, string yaml)
    {
        Write(name, yaml);
        return LoadAsync(name);
    }

    public async Task<JobId> SubmitAsync(WorkflowDefinition workflow, string? input = null, string submitter = "alice")
        => (await Runtime.SubmitAsync(workflow, input is null ? null : JsonElementFactory.Parse(input), new SubmitOptions { Submitter = submitter })).JobId;

    public async Task<JobState> RunAsync(WorkflowDefinition workflow, string? input = null, string submitter = "alice")
        => await ContinueAsync(await SubmitAsync(workflow, input, submitter));

    /// <summary>Runs the job (and its child jobs) until nothing is left to do, and returns its state.</summary>
    public async Task<JobState> ContinueAsync(JobId id, OrdoRuntime? runtime = null)
    {
        runtime ??= Runtime;
        await runtime.RunAsync(new RunRequest { RootJobId = id, UntilIdle = true }).WaitAsync(Patience);
        return (await runtime.GetStateAsync(id))!;
    }

    public async Task<List<EventEnvelope>> EventsAsync(JobId id)
    {
        var list = new List<EventEnvelope>();
        await foreach (var e in Store.ReadEventsAsync(id)) list.Add(e);
        return list;
    }

    /// <summary>The units a multi-phase pattern committed (<c>PatternProgressed</c> payloads), in order.</summary>
    public async Task<List<PatternProgressedPayload>> UnitsAsync(JobId id)
        => [.. (await EventsAsync(id)).Where(e => e.Type == EventTypes.PatternProgressed).Select(e => e.GetPayload<PatternProgressedPayload>())];

    public async Task<IReadOnlyList<JobRecord>> ChildrenAsync(JobId id) => await Store.ListJobsAsync(new JobQuery { ParentJobId = id });

    /// <summary>Registers a code agent under <paramref name="type"/>; every call is counted and its input kept.</summary>
    public void Agent(string type, Func<AgentContext, CancellationToken, Task<JsonElement>> run)
        => Code.AddAgent(type, _ => new CountingAgent(this, type, run));

    /// <summary>Registers a synchronous code agent.</summary>
    public void Agent(string type, Func<JsonElement, JsonElement> run)
        => Agent(type, (ctx, _) => Task.FromResult(run(ctx.Input)));

    /// <summary>Registers a code agent that always returns the same JSON.</summary>
    public void Agent(string type, string json) => Agent(type, _ => J(json));

    /// <summary>How many times the agent was called.</summary>
    public int Calls(string type) => _calls.TryGetValue(type, out var n) ? n : 0;

    /// <summary>The inputs the agent was called with, in call order.</summary>
    public List<JsonElement> Inputs(string type) => _inputs.Where(i => i.Type == type).Select(i => i.Input).ToList();

    /// <summary>The steps (with scope) the agent was called for, in call order.</summary>
    public List<StepRef> CalledFor(string type) => _inputs.Where(i => i.Type == type).Select(i => i.Step).ToList();

    /// <summary>Completes when an event matching <paramref name="match"/> has been committed (by any runtime of this harness).</summary>
    public Task<EventEnvelope> WhenAsync(Func<EventEnvelope, bool> match) => _log.WhenAsync(match, 1).ContinueWith(t => t.Result[0], TaskScheduler.Default);

    /// <summary>Completes when <paramref name="count"/> events matching <paramref name="match"/> have been committed.</summary>
    public Task<List<EventEnvelope>> WhenAsync(Func<EventEnvelope, bool> match, int count) => _log.WhenAsync(match, count);

    /// <summary>Completes when some job of this harness has ended (completed, failed or cancelled).</summary>
    public Task WhenAnyJobEndsAsync() => WhenAsync(e => e.Type is EventTypes.JobCompleted or EventTypes.JobFailed or EventTypes.JobCancelled);

    /// <summary>Completes when the job with this id has ended.</summary>
    public Task WhenEndsAsync(JobId id) => WhenAsync(e => e.JobId == id && e.Type is EventTypes.JobCompleted or EventTypes.JobFailed or EventTypes.JobCancelled);

    public static JsonElement J(string json) => JsonElementFactory.Parse(json);

    /// <summary>A value's JSON with insignificant whitespace removed, for comparisons.</summary>
    public static string Raw(JsonElement? e) => e is { } v ? JsonSerializer.Serialize(v) : "null";

    public async ValueTask DisposeAsync()
    {
        foreach (var r in _runtimes)
        {
            await r.DisposeAsync();
        }

        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private sealed class CountingAgent(PatternHarness h, string type, Func<AgentContext, CancellationToken, Task<JsonElement>> run) : ICodeAgent
    {
        public async ValueTask<JsonElement> InvokeAsync(AgentContext context, CancellationToken cancellationToken)
        {
            h._calls.AddOrUpdate(type, 1, (_, n) => n + 1);
            h._inputs.Enqueue((type, context.Input.Clone(), context.Step));
            return await run(context, cancellationToken);
        }
    }

    /// <summary>Every committed event, with waiters for the ones a test needs to see before it goes on.</summary>
    private sealed class EventLog : IJobObserver
    {
        private readonly Lock _gate = new();
        private readonly List<EventEnvelope> _events = [];
        private readonly List<(Func<EventEnvelope, bool> Match, int Count, TaskCompletionSource<List<EventEnvelope>> Done)> _waiters = [];

        public void OnCommitted(JobState state, IReadOnlyList<EventEnvelope> events)
        {
            List<(TaskCompletionSource<List<EventEnvelope>>, List<EventEnvelope>)> fire = [];
            lock (_gate)
            {
                _events.AddRange(events);
                foreach (var w in _waiters.ToList())
                {
                    var hits = _events.Where(w.Match).ToList();
                    if (hits.Count >= w.Count)
                    {
                        _waiters.Remove(w);
                        fire.Add((w.Done, hits));
                    }
                }
            }

            foreach (var (done, hits) in fire) done.TrySetResult(hits);
        }

        public Task<List<EventEnvelope>> WhenAsync(Func<EventEnvelope, bool> match, int count)
        {
            var done = new TaskCompletionSource<List<EventEnvelope>>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_gate)
            {
                var hits = _events.Where(match).ToList();
                if (hits.Count >= count) return Task.FromResult(hits);
                _waiters.Add((match, count, done));
            }

            return done.Task.WaitAsync(Patience);
        }
    }
}
