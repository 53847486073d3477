using Ordo.Events;

namespace Ordo.Queue;

/// <summary>A lease on a work item: who holds it, until when, and the fencing token that proves it.</summary>
/// <param name="ItemId">The work item.</param>
/// <param name="Owner">The worker holding the lease.</param>
/// <param name="Token">Increases on every delivery; an acknowledgement with an older token is refused.</param>
/// <param name="ExpiresAt">After this instant any worker may take the item over.</param>
public readonly record struct WorkItemLease(long ItemId, string Owner, long Token, DateTimeOffset ExpiresAt);

/// <summary>Names of system work items: timers that are not steps (their step id starts with <c>$</c>).</summary>
public static class SystemItems
{
    /// <summary>Fires when an approval request expires; its scope is the approval id.</summary>
    public const string ApprovalExpiry = "$approval-expiry";

    /// <summary>Wakes a parent job when one of its child jobs ended; its scope is the child's job id.</summary>
    public const string ChildEnded = "$child-ended";

    /// <summary>Asks a child job to stop because its parent no longer needs it (a cancelled branch); its scope is the parent's job id.</summary>
    public const string CancelRequested = "$cancel-requested";

    /// <summary>Whether a step id names a system item.</summary>
    public static bool IsSystem(string stepId) => stepId.StartsWith('$');

    /// <summary>
    /// Whether a step id names a timer: a system item that waits for its instant (an approval's expiry, possibly days
    /// away). A timer that has not fired yet is not work to wait for; every other system item is (a parent woken by its
    /// child's end must run before a run "until idle" may stop).
    /// </summary>
    public static bool IsTimer(string stepId) => stepId == ApprovalExpiry;
}

/// <summary>A unit of work to put on the durable queue: one attempt of one step visit.</summary>
public sealed record NewWorkItem
{
    /// <summary>The step, visit, attempt and scope.</summary>
    public required StepRef Step { get; init; }
    /// <summary>When the item becomes available (later than now for a retry backoff).</summary>
    public required DateTimeOffset AvailableAt { get; init; }
    /// <summary>Higher runs first.</summary>
    public int Priority { get; init; }
    /// <summary>When set, the item is created already leased to this worker (the committing worker runs it next).</summary>
    public string? LeaseOwner { get; init; }
    /// <summary>The lease expiry when <see cref="LeaseOwner"/> is set.</summary>
    public DateTimeOffset LeaseExpiresAt { get; init; }
}

/// <summary>A work item handed to a worker, with its lease.</summary>
public sealed record WorkItem
{
    /// <summary>The job.</summary>
    public required JobId JobId { get; init; }
    /// <summary>The step, visit, attempt and scope.</summary>
    public required StepRef Step { get; init; }
    /// <summary>The tenant of the job.</summary>
    public required string Tenant { get; init; }
    /// <summary>Higher runs first.</summary>
    public int Priority { get; init; }
    /// <summary>How many times the item has been delivered, this delivery included.</summary>
    public int Deliveries { get; init; }
    /// <summary>How many of its earlier deliveries ended with the lease lost (the worker died, or stopped renewing it): not a release, not a graceful stop.</summary>
    public int LostDeliveries { get; init; }
    /// <summary>The workers that lost it, oldest first (at most the last few).</summary>
    public IReadOnlyList<string> LostOwners { get; init; } = [];
    /// <summary>The lease.</summary>
    public required WorkItemLease Lease { get; init; }
    /// <summary>When the item became available to claim: its first delivery waited in the queue from then. Null when the store does not say.</summary>
    public DateTimeOffset? AvailableAt { get; init; }
}

/// <summary>A request for work.</summary>
public sealed record ClaimRequest
{
    /// <summary>The claiming worker.</summary>
    public required string Owner { get; init; }
    /// <summary>At most this many items.</summary>
    public int MaxItems { get; init; } = 1;
    /// <summary>How long the lease lasts.</summary>
    public required TimeSpan LeaseDuration { get; init; }
    /// <summary>The current time.</summary>
    public required DateTimeOffset Now { get; init; }
    /// <summary>Only work of this job and its sub-jobs.</summary>
    public JobId? RootJobId { get; init; }
    /// <summary>Workers known to be dead: their leases are taken over without waiting for expiry.</summary>
    public IReadOnlyCollection<string>? DeadOwners { get; init; }
}

/// <summary>What is on the queue, for one job tree or for everything.</summary>
/// <param name="Ready">Items that can be claimed now.</param>
/// <param name="Delayed">Items waiting for their <c>available_at</c>.</param>
/// <param name="Leased">Items held by a live lease.</param>
/// <param name="NextVisibleAt">The earliest instant at which a delayed or leased item becomes claimable.</param>
/// <param name="LeaseOwners">The workers that hold leases.</param>
public sealed record QueueSummary(int Ready, int Delayed, int Leased, DateTimeOffset? NextVisibleAt, IReadOnlyList<string> LeaseOwners)
{
    /// <summary>Whether nothing is left to do.</summary>
    public bool IsEmpty => Ready == 0 && Delayed == 0 && Leased == 0;
}
