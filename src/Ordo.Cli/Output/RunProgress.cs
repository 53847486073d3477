using Ordo.Engine;
using Ordo.Events;
using Ordo.State;
using Spectre.Console;

namespace Ordo.Cli.Output;

/// <summary>Shows a job's progress while it runs: a live line on a terminal, one plain line per finished step otherwise.</summary>
internal sealed class RunProgress(CliContext ctx, int totalSteps) : IJobObserver
{
    private readonly Lock _gate = new();

    // A process that takes a job over is first told about the job's whole log so far; only what happens from now on is progress.
    private readonly DateTimeOffset _since = EventChain.TruncateToMilliseconds(TimeProvider.System.GetUtcNow());
    private JobId? _job;
    private JobState? _latest;

    public void Follow(JobId job) => _job = job;

    public void OnCommitted(JobState state, IReadOnlyList<EventEnvelope> events)
    {
        if (_job is { } j && state.JobId != j) return;
        lock (_gate)
        {
            _latest = state;
            if (ctx.Terminal || !ctx.Human) return;
            foreach (var e in events)
            {
                if (e.Timestamp < _since) continue;
                switch (e.Type)
                {
                    case EventTypes.StepSucceeded:
                        ctx.Out.WriteLine($"  ✓ {e.StepId} (attempt {e.Attempt})  {HumanOut.Ms(e.GetPayload<StepSucceededPayload>().DurationMs)}");
                        break;
                    case EventTypes.StepFailed:
                        var p = e.GetPayload<StepFailedPayload>();
                        ctx.Out.WriteLine($"  ✗ {e.StepId} (attempt {e.Attempt})  {p.Error}: {p.Message}{(p.WillRetry ? $" — retrying in {HumanOut.Ms(p.RetryDelayMs ?? 0)}" : "")}");
                        break;
                }
            }
        }
    }

    /// <summary>Runs <paramref name="work"/>, refreshing a live status line meanwhile when on a terminal.</summary>
    public async Task<T> RunAsync<T>(Func<Task<T>> work)
    {
        if (!ctx.Terminal || !ctx.Human)
        {
            return await work().ConfigureAwait(false);
        }

        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(ctx.Out), Interactive = InteractionSupport.Yes });
        T result = default!;
        await console.Status().Spinner(Spinner.Known.Dots).StartAsync(Line(), async status =>
        {
            var task = work();
            while (!task.IsCompleted)
            {
                await Task.WhenAny(task, Task.Delay(100)).ConfigureAwait(false);
                status.Status(Line());
            }

            result = await task.ConfigureAwait(false);
        }).ConfigureAwait(false);
        return result;
    }

    private string Line()
    {
        JobState? s;
        lock (_gate) s = _latest;
        if (s is null) return "starting…";
        var done = s.Steps.Values.Count(x => x.Status == "succeeded");
        var current = string.Join(", ", s.Open.Values.Select(o => o.StepId).Distinct().Take(3));
        return Markup.Escape($"{done}/{totalSteps} steps · {(current.Length > 0 ? "running " + current : s.Status.ToWire())} · {HumanOut.Count(s.Usage.Tokens)} tokens · {HumanOut.Money(s.Usage.Cost)} · {s.Usage.ToolCalls} tool calls");
    }
}
