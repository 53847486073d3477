using Ordo.Configuration;
using Ordo.Engine;
using Ordo.Events;
using Ordo.Gateway;
using Ordo.State;
using Ordo.Workflows;

namespace Ordo.Agents.ToolUse;

/// <summary>
/// The step's scope for a call a model asked for: the same job, step, log and budgets, except that an interruption the
/// gateway raises is held here rather than applied, so that the runner decides whether it stops the step or is told to
/// the model (a kill switch on the tool refuses the call; the model goes on without it).
/// </summary>
internal sealed class ModelToolScope(StepExecution execution) : IToolCallScope
{
    /// <summary>The interruption the last call raised, if any.</summary>
    public StepInterrupt? Interrupted { get; private set; }

    public JobId JobId => execution.JobId;
    public string Tenant => execution.Tenant;
    public StepRef Step => execution.Step;
    public JobState State => execution.State;
    public WorkflowDefinition Workflow => execution.Workflow;
    public ProjectDefinition Project => execution.Project;
    public bool DryRun => execution.DryRun;
    public IReadOnlyList<NewEvent> Events => execution.Events;

    public int NextCallIndex() => execution.NextCallIndex();
    public void Record(NewEvent e) => execution.Record(e);
    public ValueTask AppendNowAsync(NewEvent e, CancellationToken cancellationToken) => execution.AppendNowAsync(e, cancellationToken);

    public ValueTask<TRefusal?> AppendNowUnlessAsync<TRefusal>(NewEvent e, Func<JobState, TRefusal?> refusal, CancellationToken cancellationToken) where TRefusal : class
        => execution.AppendNowUnlessAsync(e, refusal, cancellationToken);

    public void Interrupt(StepInterrupt interrupt) => Interrupted ??= interrupt;
}
