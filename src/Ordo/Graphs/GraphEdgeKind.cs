namespace Ordo.Graphs;

/// <summary>Why an edge of a workflow graph exists: which rule of the engine can take it.</summary>
public enum GraphEdgeKind
{
    /// <summary>From the start to the first step.</summary>
    Entry,
    /// <summary>A <c>next</c> route without a condition.</summary>
    Route,
    /// <summary>A <c>next</c> route with a <c>when</c> condition.</summary>
    Condition,
    /// <summary>No route's condition held: the flow ends.</summary>
    Otherwise,
    /// <summary>A parallel step starts a branch.</summary>
    Branch,
    /// <summary>A foreach step runs its <c>do</c> step for each item.</summary>
    Item,
    /// <summary>A branch or an item ended: on to the join step, or back to the coordinating step.</summary>
    BranchEnd,
    /// <summary>A gate rejected the artifact (<c>on_reject</c>).</summary>
    Rejected,
    /// <summary>A planner's plan was rejected (<c>plan.fallback</c>).</summary>
    Fallback,
    /// <summary>An approval expired (<c>on_expire</c>).</summary>
    Expired,
    /// <summary>An approval was denied: the job fails.</summary>
    Denied,
    /// <summary>The step's last attempt failed and a human is asked (<c>on_failure: escalate</c>); approved, it runs again.</summary>
    Escalation,
}
