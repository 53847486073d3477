using System.Diagnostics.CodeAnalysis;
using Ordo.Configuration;
using Ordo.Engine.Running;
using Ordo.Events;
using Ordo.Expressions;
using Ordo.Gateway;
using Ordo.Queue;
using Ordo.State;
using Ordo.Workflows;

namespace Ordo.Engine;

/// <summary>One attempt of one step, while it runs: its inputs, and the events it records on the way.</summary>
/// <remarks>
/// Thread-safe: a code agent may make tool calls in parallel (each gets its own call index, and every event is kept,
/// in the order recorded). Once the step is closed (it timed out, or its lease was lost), nothing it still does is
/// recorded or appended: a call it makes then is refused before it reaches the tool.
/// </remarks>
[SuppressMessage("Reliability", "CA1001", Justification = "The semaphore's wait handle is never used, so it holds nothing to dispose; an execution ends with its step.")]
public sealed class StepExecution : IToolCallScope
{
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _appending = new(1, 1);
    private readonly List<NewEvent> _events = [];
    private string? _closed;
    private readonly AppendNow _appendNow;
    private int _callIndex;
    private readonly Func<CancellationToken, ValueTask<IReadOnlyList<EventEnvelope>>>? _readLog;

    /// <summary>
    /// The events this attempt of the step recorded in earlier deliveries (before a crash, a lost lease, a pause for an
    /// approval): what a step that must not repeat itself — an agent's model calls and tool calls — replays instead.
    /// Empty when the runtime gives no log.
    /// </summary>
    internal async ValueTask<IReadOnlyList<EventEnvelope>> EarlierEventsAsync(CancellationToken cancellationToken)
    {
        if (_readLog is null) return [];
        await LeasedAsync(cancellationToken).ConfigureAwait(false);
        var all = await _readLog(cancellationToken).ConfigureAwait(false);
        var step = Item.Step;
        return [.. all.Where(e => e.StepId == step.StepId && (e.Visit ?? 1) == step.Visit && e.Attempt == step.Attempt && e.Scope == step.Scope)];
    }

    /// <summary>The index <see cref="NextCallIndex"/> will give next (to find a call's earlier outcome before making it).</summary>
    internal int PeekCallIndex() => Volatile.Read(ref _callIndex);

    internal StepExecution(WorkItem item, WorkflowDefinition workflow, StepDefinition step, JobState state, bool dryRun, ExpressionEvaluator evaluator,
        AppendNow appendNow, Func<CancellationToken, ValueTask<IReadOnlyList<EventEnvelope>>>? readLog = null)
    {
        _readLog = readLog;
        Item = item;
        Workflow = workflow;
        Definition = step;
        State = state;
        UsageAtStart = state.Usage;
        DryRun = dryRun;
        Evaluator = evaluator;
        _appendNow = appendNow;

        // A multi-phase step runs once per unit: unit u numbers its tool calls from 1000·u, so every call of the
        // step visit keeps its own idempotency key however many units came before.
        _callIndex = state.Patterns.TryGetValue(item.Step.WorkKey, out var pattern) ? pattern.Progress.Count * 1000 : 0;
    }

    /// <summary>The work item being run.</summary>
    public WorkItem Item { get; private set; }

    private Func<ValueTask<WorkItem?>>? _leased;

    /// <summary>
    /// The step started before the commit that leases it was written: whatever writes to the log or reads it waits for
    /// <paramref name="leased"/> (the item as leased, or null when the commit was refused and the step must stop).
    /// </summary>
    internal void StartsBefore(Func<ValueTask<WorkItem?>> leased) => _leased = leased;

    /// <summary>Takes the item as its commit leased it (the step started before: <see cref="StartsBefore"/>).</summary>
    internal void AdoptItem(WorkItem item) => Item = item;

    private async ValueTask LeasedAsync(CancellationToken cancellationToken)
    {
        if (_leased is null) return;
        var item = await _leased().AsTask().WaitAsync(cancellationToken).ConfigureAwait(false)
            ?? throw new StepAbortedException("the commit of the step before it was refused");
        Item = item;
    }
    /// <inheritdoc />
    public WorkflowDefinition Workflow { get; }
    /// <summary>The step's definition.</summary>
    public StepDefinition Definition { get; }
    /// <inheritdoc />
    public JobState State { get; private set; }
    /// <summary>The job's usage when the step started (model calls written during the step are in <see cref="State"/>).</summary>
    internal JobUsage UsageAtStart { get; }
    /// <inheritdoc />
    public bool DryRun { get; }
    /// <summary>The expression evaluator.</summary>
    public ExpressionEvaluator Evaluator { get; }
    /// <inheritdoc />
    public JobId JobId => Item.JobId;
    /// <inheritdoc />
    public string Tenant => State.Tenant;
    /// <inheritdoc />
    public StepRef Step => Item.Step;
    /// <inheritdoc />
    public ProjectDefinition Project => Workflow.Project;
    /// <summary>Events recorded so far (and not appended yet), to be committed with the result.</summary>
    public IReadOnlyList<NewEvent> Events
    {
        get
        {
            lock (_gate) return [.. _events];
        }
    }

    /// <summary>The expression scope of this step: the state when it started, its attempt, and whether it sees quarantined artifacts.</summary>
    public ExpressionScope Scope => new()
    {
        State = State,
        Attempt = Step.Attempt,
        IncludeQuarantined = Definition.AcceptsQuarantined,
        Constraints = Workflow.ConstraintsJson,
        StepScope = Step.Scope,
    };

    /// <inheritdoc />
    public int NextCallIndex() => Interlocked.Increment(ref _callIndex) - 1;

    /// <inheritdoc />
    public void Record(NewEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        Telemetry.OrdoSpans.Stamp(e, Telemetry.OrdoSpans.Current);
        lock (_gate)
        {
            ThrowIfClosed();
            _events.Add(e);
        }
    }

    /// <summary>
    /// Commits a step's events in the middle of the step; when <c>refusal</c> is set it is asked first, on the job as
    /// the commit would find it, and a non-null answer means nothing is written. Returns the job after, and the refusal.
    /// </summary>
    internal delegate ValueTask<(JobState State, object? Refusal)> AppendNow(StepExecution execution, IReadOnlyList<NewEvent> events, Func<JobState, object?>? refusal, CancellationToken cancellationToken);

    /// <inheritdoc />
    public async ValueTask AppendNowAsync(NewEvent e, CancellationToken cancellationToken)
        => await AppendAsync(e, null, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask<TRefusal?> AppendNowUnlessAsync<TRefusal>(NewEvent e, Func<JobState, TRefusal?> refusal, CancellationToken cancellationToken)
        where TRefusal : class
    {
        ArgumentNullException.ThrowIfNull(refusal);
        return (TRefusal?)await AppendAsync(e, state => refusal(state), cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask<object?> AppendAsync(NewEvent e, Func<JobState, object?>? refusal, CancellationToken cancellationToken)
    {
        Telemetry.OrdoSpans.Stamp(e, Telemetry.OrdoSpans.Current);
        await LeasedAsync(cancellationToken).ConfigureAwait(false);
        await _appending.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // Events recorded before this one must come first in the log; those recorded while it is written stay for the next.
            List<NewEvent> batch;
            lock (_gate)
            {
                ThrowIfClosed();
                batch = [.. _events, e];
            }

            var (state, refused) = await _appendNow(this, batch, refusal, cancellationToken).ConfigureAwait(false);
            if (refused is not null)
            {
                // Nothing was written: the events recorded before stay to be committed with the step.
                return refused;
            }

            lock (_gate)
            {
                State = state;
                _events.RemoveRange(0, batch.Count - 1);
            }

            return null;
        }
        finally
        {
            _appending.Release();
        }
    }

    /// <summary>
    /// Records an event and writes it now, with the events recorded before it. If the write fails (the job changed under
    /// the step, the store is unreachable), the event stays recorded, to be committed with the step or after it.
    /// </summary>
    internal async ValueTask RecordNowAsync(NewEvent e, CancellationToken cancellationToken)
    {
        Record(e);
        await LeasedAsync(cancellationToken).ConfigureAwait(false);
        await _appending.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            List<NewEvent> batch;
            lock (_gate)
            {
                ThrowIfClosed();
                batch = [.. _events];
            }

            var (state, _) = await _appendNow(this, batch, null, cancellationToken).ConfigureAwait(false);
            lock (_gate)
            {
                State = state;
                _events.RemoveRange(0, batch.Count);
            }
        }
        finally
        {
            _appending.Release();
        }
    }

    /// <summary>Closes the step: from now on nothing it records or appends reaches the log (it timed out, or its lease was lost).</summary>
    internal void Close(string why)
    {
        lock (_gate) _closed ??= why;
    }

    private void ThrowIfClosed()
    {
        if (_closed is { } why) throw new StepAbortedException(why);
    }

    /// <summary>The interrupt set by a guard or the gateway, if any (the first one wins).</summary>
    public StepInterrupt? PendingInterrupt { get; private set; }

    /// <inheritdoc />
    public void Interrupt(StepInterrupt interrupt) => PendingInterrupt ??= interrupt;

    /// <summary>The variations <c>retry.vary</c> asked for on this attempt.</summary>
    public IReadOnlyList<string> Variations => State.Open.TryGetValue(Step.WorkKey, out var open) && open.Variations is { } v ? v : [];

    internal void AdoptState(JobState state) => State = state;
}
