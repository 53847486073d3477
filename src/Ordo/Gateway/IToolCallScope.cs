using Ordo.Configuration;
using Ordo.Events;
using Ordo.State;
using Ordo.Workflows;

namespace Ordo.Gateway;

/// <summary>The step on whose behalf the gateway runs a call: identity, project, and where to record events.</summary>
public interface IToolCallScope
{
    /// <summary>The job.</summary>
    JobId JobId { get; }
    /// <summary>The tenant.</summary>
    string Tenant { get; }
    /// <summary>The step, visit and attempt.</summary>
    StepRef Step { get; }
    /// <summary>The job state when the step started (plus events appended since).</summary>
    JobState State { get; }
    /// <summary>The workflow.</summary>
    WorkflowDefinition Workflow { get; }
    /// <summary>The project (tools, connections).</summary>
    ProjectDefinition Project { get; }
    /// <summary>Whether tool calls must have no side effects (shadow runs).</summary>
    bool DryRun { get; }

    /// <summary>Returns the next call index of this step visit (0, 1, …); stable across retries because calls happen in order.</summary>
    int NextCallIndex();

    /// <summary>Records an event to be committed with the step's result.</summary>
    void Record(NewEvent e);

    /// <summary>Commits an event now (before a side effect, so the log shows the intent even if the process dies).</summary>
    ValueTask AppendNowAsync(NewEvent e, CancellationToken cancellationToken);

    /// <summary>
    /// Commits an event now unless <paramref name="refusal"/>, given the job as it is at that instant (with this step's
    /// recorded events), returns a reason not to. The check and the write are one: if another step changed the job
    /// first, the check is made again on the newer job, so steps running at once cannot all pass on the same budget.
    /// </summary>
    /// <returns>Null when the event was committed; otherwise the refusal (and nothing was written).</returns>
    ValueTask<TRefusal?> AppendNowUnlessAsync<TRefusal>(NewEvent e, Func<JobState, TRefusal?> refusal, CancellationToken cancellationToken) where TRefusal : class;

    /// <summary>Events recorded so far in this step (not yet committed).</summary>
    IReadOnlyList<NewEvent> Events { get; }

    /// <summary>Stops the step: it pauses for an approval or ends the job, whatever the step's code does next.</summary>
    void Interrupt(Engine.StepInterrupt interrupt);
}
