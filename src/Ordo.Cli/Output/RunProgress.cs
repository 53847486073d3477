using Ordo.Engine;
using Ordo.Events;
using Ordo.State;
using Spectre.Console;

namespace Ordo.Cli.Output;

/// <summary>Shows a job's progress while it runs: a live line on a terminal, one plain line per finished step otherwise.</summary>
internal sealed class RunProgress(CliContext ctx, int totalSteps, bool nameJobs = false) : IJobObserver
{
    private readonly Lock _gate = new();

    // A process that takes a job over is first told about the job's whole log so far; only what happens from now on is progress.
    private readonly DateTimeOffset _since = EventChain.TruncateToMilliseconds(TimeProvider.System.GetUtcNow());
    private JobId? _job;
    private JobState? _latest;

    public void Follow(JobId job) => _job = job;

    /// <summary>
    /// A worker's progress shows only the steps this worker ran (it also sees what other workers committed, when it
    /// takes a job over): set to the worker's name, steps whose delivery started elsewhere are not shown.
    /// </summary>
    public string? OnlyWorker { get; set; }

    private readonly HashSet<string> _started = new(StringComparer.Ordinal);
    private readonly HashSet<string> _others = new(StringComparer.Ordinal);

    // The step attempts whose end was shown, per job until the job ends.
    private readonly Dictionary<string, HashSet<string>> _ended = new(StringComparer.Ordinal);

    public void OnCommitted(JobState state, IReadOnlyList<EventEnvelope> events)
    {
        // The followed job and its sub-jobs (their steps are prefixed with the child's workflow).
        var followed = _job is not { } j || state.JobId == j;
        if (!followed && state.RootJobId != _job!.Value.Value) return;
        lock (_gate)
        {
            if (followed && (_job is not null || state.ParentJobId is null)) _latest = state;
            if ((ctx.Terminal && !nameJobs) || !ctx.Human) return;
            var who = nameJobs ? $"{state.JobId} {state.Workflow}@{state.Version} " : state.ParentJobId is null ? "" : $"[{state.Workflow}@{state.Version}] ";
            foreach (var e in events)
            {
                if (OnlyWorker is { } worker && e.StepId is { } stepId)
                {
                    // Per job: the jobs of one workflow share their steps' work keys.
                    var key = state.JobId.Value + "\0" + WorkKeys.For(e.Scope, stepId, e.Visit ?? 1);
                    if (e.Type == EventTypes.StepStarted)
                    {
                        // Kept even from before this worker started: a step another worker started then is not this one's.
                        var ours = e.GetPayload<StepStartedPayload>().Worker == worker;
                        (ours ? _started : _others).Add(key);
                        (ours ? _others : _started).Remove(key);
                        continue;
                    }

                    // A step's end is this worker's when it saw the step start here, or saw no other worker start it (the
                    // start of a step this process claimed does not always reach it before the step's end).
                    if (e.Type is EventTypes.StepSucceeded or EventTypes.StepFailed)
                    {
                        if (!_started.Remove(key) & _others.Remove(key)) continue;

                        // An end told twice (in this process's commit, then again when the job is caught up) is shown once.
                        ref var ended = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_ended, state.JobId.Value, out _);
                        if (!(ended ??= new(StringComparer.Ordinal)).Add(key + "\0" + e.Attempt)) continue;
                    }
                }

                if (e.Timestamp < _since) continue;

                var where = e.Scope is { } scope ? $" [{scope}]" : "";
                switch (e.Type)
                {
                    case EventTypes.StepSucceeded:
                        ctx.Out.WriteLine($"  ✓ {who}{e.StepId}{where} (attempt {e.Attempt})  {HumanOut.Ms(e.GetPayload<StepSucceededPayload>().DurationMs)}");
                        break;
                    case EventTypes.StepFailed:
                        var p = e.GetPayload<StepFailedPayload>();
                        ctx.Out.WriteLine($"  ✗ {who}{e.StepId}{where} (attempt {e.Attempt})  {p.Error}: {HumanOut.OneLine(p.Message)}{(p.WillRetry ? $" — retrying in {HumanOut.Ms(p.RetryDelayMs ?? 0)}" : "")}");
                        break;
                }
            }

            if (state.Status.IsTerminal()) _ended.Remove(state.JobId.Value);
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
        // Top-level steps against the workflow's; steps inside branches and items are counted apart.
        var done = s.Steps.Values.Count(x => x.Status == "succeeded" && x.Scope is null);
        var inner = s.Steps.Values.Count(x => x.Status == "succeeded" && x.Scope is not null);
        var current = string.Join(", ", s.Open.Values.Select(o => o.StepId).Distinct().Take(3));
        return Markup.Escape($"{done}/{totalSteps} steps{(inner > 0 ? $" (+{inner} in branches)" : "")} · {(current.Length > 0 ? "running " + current : s.Status.ToWire())} · {HumanOut.Count(s.Usage.Tokens)} tokens · {HumanOut.Money(s.Usage.Cost)} · {s.Usage.ToolCalls} tool calls");
    }
}
