using System.Text.Json;
using Ordo.Engine;
using Ordo.Events;
using Ordo.State;
using Ordo.Storage;
using Ordo.Workflows;

namespace Ordo.Benchmarks;

/// <summary>
/// The data of one typical step of a code-step chain: a submitted job's state and the events a step's commit appends
/// (StepSucceeded with its output, StepScheduled and StepStarted of the next step).
/// </summary>
public static class StepFixture
{
    /// <summary>A 10-step chain of code steps, each adding one to <c>i</c>.</summary>
    public static WorkflowDefinition Chain(int n = 10)
    {
        var b = WorkflowBuilder.Create("micro-chain", 1);
        for (var k = 1; k <= n; k++)
        {
            var id = $"n{k}";
            var next = k < n ? $"n{k + 1}" : null;
            b.Step(id, s =>
            {
                s.Code(_ => Json.Of(new { i = k }));
                if (next is not null) s.Next(next);
            });
        }

        return b.Build();
    }

    /// <summary>Submits one job of <see cref="Chain"/> to <paramref name="store"/> and returns its state (seq 2: JobSubmitted, StepScheduled).</summary>
    public static async Task<JobState> SubmitAsync(IOrdoStore store)
    {
        await store.InitializeAsync();
        await using var runtime = new OrdoRuntime(store);
        var job = await runtime.SubmitAsync(Chain(), JsonSerializer.SerializeToElement(new { i = 0 }));
        return await runtime.GetStateAsync(job.JobId) ?? throw new InvalidOperationException("the job was not stored");
    }

    /// <summary>The unsealed events of step <c>n{k}</c>'s commit, as the engine appends them.</summary>
    public static NewEvent[] StepEvents(int k, DateTimeOffset now)
    {
        var step = new StepRef($"n{k}", 1, 1);
        var next = new StepRef($"n{k + 1}", 1, 1);
        return
        [
            EventFactory.Step(EventTypes.StepSucceeded, step, new StepSucceededPayload(JsonSerializer.SerializeToElement(new { i = k }), 0.05, [next.StepId], null), now),
            EventFactory.Step(EventTypes.StepScheduled, next, new StepScheduledPayload("code", "route", step.StepId, null), now),
            StoreEvents.StepStarted(next, "host/1/1/bench", 1, now),
        ];
    }
}
