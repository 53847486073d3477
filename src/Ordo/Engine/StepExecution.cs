using Ordo.Configuration;
using Ordo.Events;
using Ordo.Expressions;
using Ordo.Gateway;
using Ordo.Queue;
using Ordo.State;
using Ordo.Workflows;

namespace Ordo.Engine;

/// <summary>One attempt of one step, while it runs: its inputs, and the events it records on the way.</summary>
/// <remarks>Used by one worker at a time; not thread-safe.</remarks>
public sealed class StepExecution : IToolCallScope
{
    private readonly List<NewEvent> _events = [];
    private readonly Func<StepExecution, IReadOnlyList<NewEvent>, CancellationToken, ValueTask<JobState>> _appendNow;
    private int _callIndex;

    internal StepExecution(WorkItem item, WorkflowDefinition workflow, StepDefinition step, JobState state, bool dryRun, ExpressionEvaluator evaluator,
        Func<StepExecution, IReadOnlyList<NewEvent>, CancellationToken, ValueTask<JobState>> appendNow)
    {
        Item = item;
        Workflow = workflow;
        Definition = step;
        State = state;
        DryRun = dryRun;
        Evaluator = evaluator;
        _appendNow = appendNow;

        // A multi-phase step runs once per unit: unit u numbers its tool calls from 1000·u, so every call of the
        // step visit keeps its own idempotency key however many units came before.
        _callIndex = state.Patterns.TryGetValue(item.Step.WorkKey, out var pattern) ? pattern.Progress.Count * 1000 : 0;
    }

    /// <summary>The work item being run.</summary>
    public WorkItem Item { get; }
    /// <inheritdoc />
    public WorkflowDefinition Workflow { get; }
    /// <summary>The step's definition.</summary>
    public StepDefinition Definition { get; }
    /// <inheritdoc />
    public JobState State { get; private set; }
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
    /// <summary>Events recorded so far, to be committed with the result.</summary>
    public IReadOnlyList<NewEvent> Events => _events;

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
    public int NextCallIndex() => _callIndex++;

    /// <inheritdoc />
    public void Record(NewEvent e) => _events.Add(e);

    /// <inheritdoc />
    public async ValueTask AppendNowAsync(NewEvent e, CancellationToken cancellationToken)
    {
        // Events recorded before this one must come first in the log.
        var batch = new List<NewEvent>(_events) { e };
        State = await _appendNow(this, batch, cancellationToken).ConfigureAwait(false);
        _events.Clear();
    }

    /// <summary>The interrupt set by a guard or the gateway, if any (the first one wins).</summary>
    public StepInterrupt? PendingInterrupt { get; private set; }

    /// <inheritdoc />
    public void Interrupt(StepInterrupt interrupt) => PendingInterrupt ??= interrupt;

    /// <summary>The variations <c>retry.vary</c> asked for on this attempt.</summary>
    public IReadOnlyList<string> Variations => State.Open.TryGetValue(Step.WorkKey, out var open) && open.Variations is { } v ? v : [];

    internal void AdoptState(JobState state) => State = state;
}
