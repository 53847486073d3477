using System.Text.Json;
using Ordo.Engine;
using Ordo.Events;
using Ordo.State;
using Ordo.Storage;
using Ordo.Testing;
using Ordo.Workflows;

namespace Ordo.Tests.Engine;

/// <summary>A runtime over an in-memory store, with helpers to run jobs and read their logs.</summary>
internal sealed class EngineHarness : IAsyncDisposable
{
    public EngineHarness(OrdoRuntimeOptions? options = null, OrdoComponents? components = null, IOrdoStore? store = null)
    {
        Store = store ?? new InMemoryOrdoStore();
        Options = options ?? new OrdoRuntimeOptions { Workers = 2, PollInterval = TimeSpan.FromMilliseconds(5) };
        Runtime = new OrdoRuntime(Store, Options, components);
    }

    public IOrdoStore Store { get; }

    public OrdoRuntimeOptions Options { get; }

    public OrdoRuntime Runtime { get; }

    public async Task<JobState> RunAsync(WorkflowDefinition workflow, object? input = null, CancellationToken cancellationToken = default)
    {
        var job = await Runtime.SubmitAsync(workflow, input is null ? null : input is JsonElement e ? e : Json.Of(input), cancellationToken: cancellationToken);
        await Runtime.RunAsync(new RunRequest { RootJobId = job.JobId, UntilIdle = true }, cancellationToken);
        return (await Runtime.GetStateAsync(job.JobId, cancellationToken))!;
    }

    public async Task<List<EventEnvelope>> EventsAsync(JobId id)
    {
        var list = new List<EventEnvelope>();
        await foreach (var e in Store.ReadEventsAsync(id)) list.Add(e);
        return list;
    }

    public async Task<List<string>> TypesAsync(JobId id) => (await EventsAsync(id)).Select(e => e.StepId is null ? e.Type : $"{e.Type}:{e.StepId}").ToList();

    public ValueTask DisposeAsync() => Runtime.DisposeAsync();

    /// <summary>Code steps n1..nN, each routed to the next, each output <c>{ i }</c> one more than the step before's; pure unless <paramref name="pure"/> says otherwise.</summary>
    public static WorkflowDefinition Chain(int n, Func<int, bool>? pure = null, Action<int>? onRun = null)
    {
        var b = WorkflowBuilder.Create("chain", 1);
        for (var k = 1; k <= n; k++)
        {
            var (index, previous, next) = (k, k > 1 ? $"n{k - 1}" : null, k < n ? $"n{k + 1}" : null);
            b.Step($"n{k}", s =>
            {
                s.Code(ctx =>
                {
                    onRun?.Invoke(index);
                    return Int((previous is null ? 0 : ReadI(ctx, previous)) + 1);
                }, pure: pure?.Invoke(index) ?? true);
                if (next is not null) s.Next(next);
            });
        }

        return b.Build();
    }

    public static JsonElement Int(int i) => Json.Of(new { i });

    public static int ReadI(CodeStepContext ctx, string step) => ctx.OutputOf(step) is { } e ? e.GetProperty("i").GetInt32() : 0;
}
