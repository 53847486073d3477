namespace Ordo.Engine;

/// <summary>How the runtime runs work. Every default is stated; limits are validated when the runtime starts.</summary>
public sealed class OrdoRuntimeOptions
{
    /// <summary>Work items processed at once in this process. Default: the number of processor cores.</summary>
    public int Workers { get; set; } = Environment.ProcessorCount;

    /// <summary>How long a claimed work item stays leased without renewal; after that any worker may take it over. Default: 30 s.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The longest an idle worker waits before looking for work written by other processes, on a store that cannot wake it (<see cref="Storage.IQueueStore.WatchForWork"/>). Default: 250 ms.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>On a store that wakes idle workers when other processes add work (SQLite does), the longest an idle worker waits anyway: a safety net for a missed wake-up. Default: 5 s.</summary>
    public TimeSpan IdlePollInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>On a graceful stop, how long running steps may take to finish before they are interrupted and their leases released. Default: 10 s.</summary>
    public TimeSpan ShutdownGrace { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>A snapshot of a job's state is stored every this many events. Default: 500.</summary>
    public int SnapshotEvery { get; set; } = 500;

    /// <summary>A worker runs at most this many successive steps of one job before giving other jobs a turn. Default: 256.</summary>
    public int MaxInlineSteps { get; set; } = 256;

    /// <summary>
    /// Whether a step that reaches nothing outside its job's state (a <c>transform</c>, or <c>code</c> declared
    /// <see cref="Workflows.CodeStep.Pure"/>), run by a worker right after the step before it, starts while that step's
    /// commit is being written instead of after. Its own commit still waits for that one; if that commit is refused (the
    /// job changed meanwhile, or the lease was lost), the early run is dropped, nothing of it written, and the step runs
    /// again, if at all, from the state actually written. The log is the same either way; a chain of such steps waits
    /// for one commit at a time instead of a commit and then a step. Default: true.
    /// </summary>
    public bool StartStepsEarly { get; set; } = true;

    /// <summary>
    /// The most steps one commit writes when pure steps follow each other. A pure step (a <c>transform</c>, or <c>code</c>
    /// declared <see cref="Workflows.CodeStep.Pure"/>) whose only successor is pure too, leased to the same worker, runs
    /// that successor before its own commit is written, and so on: one commit then writes them all, each step's events
    /// in the log exactly as if each had had its own commit. What is not written when the process stops is run again,
    /// which a pure step allows. A successor that fails, is held by governance, declares a <c>timeout</c> or is not pure
    /// runs on its own as usual. 1 gives every step a commit of its own. Default: 16.
    /// </summary>
    public int PureStepsPerCommit { get; set; } = 16;

    /// <summary>
    /// How long the pure steps written by one commit (<see cref="PureStepsPerCommit"/>) may run in all: no further step
    /// joins the commit once this much time has passed since the first was planned. Default: 20 ms.
    /// </summary>
    public TimeSpan PureStepsCommitWithin { get; set; } = TimeSpan.FromMilliseconds(20);

    /// <summary>Work items claimed per round trip to the store. Default: 16.</summary>
    public int ClaimBatchSize { get; set; } = 16;

    /// <summary>
    /// The most bytes, as JSON, a step's output or any artifact it writes may take: a larger one fails the step as
    /// <c>output_too_large</c> (not retried) and is not recorded, so that no event of the log is unbounded. Default: 4 MiB.
    /// </summary>
    public int MaxOutputBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>A work item delivered this many times without completing (its worker keeps dying) fails its step. Default: 10.</summary>
    public int MaxDeliveries { get; set; } = 10;

    /// <summary>The clock. Default: the system clock.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>The source of retry jitter. Default: <see cref="Random.Shared"/>.</summary>
    public Random Random { get; set; } = Random.Shared;

    /// <summary>How often kill switches are re-read from the store; a switch takes effect at the next step or tool call after that. Default: 250 ms.</summary>
    public TimeSpan KillSwitchRefresh { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Run tool calls with side effects in dry-run mode (shadow runs). Default: false.</summary>
    public bool DryRun { get; set; }

    /// <summary>Receives every committed batch of events (progress displays, metrics).</summary>
    public IList<IJobObserver> Observers { get; } = [];

    /// <summary>Checks the limits.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A limit is out of range.</exception>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(Workers, 1, nameof(Workers));
        ArgumentOutOfRangeException.ThrowIfLessThan(LeaseDuration, TimeSpan.FromMilliseconds(100), nameof(LeaseDuration));
        ArgumentOutOfRangeException.ThrowIfLessThan(PollInterval, TimeSpan.FromMilliseconds(1), nameof(PollInterval));
        ArgumentOutOfRangeException.ThrowIfLessThan(IdlePollInterval, TimeSpan.FromMilliseconds(1), nameof(IdlePollInterval));
        ArgumentOutOfRangeException.ThrowIfLessThan(SnapshotEvery, 1, nameof(SnapshotEvery));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxInlineSteps, 1, nameof(MaxInlineSteps));
        ArgumentOutOfRangeException.ThrowIfLessThan(ClaimBatchSize, 1, nameof(ClaimBatchSize));
        ArgumentOutOfRangeException.ThrowIfLessThan(PureStepsPerCommit, 1, nameof(PureStepsPerCommit));
        ArgumentOutOfRangeException.ThrowIfLessThan(PureStepsCommitWithin, TimeSpan.Zero, nameof(PureStepsCommitWithin));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxDeliveries, 1, nameof(MaxDeliveries));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxOutputBytes, 1024, nameof(MaxOutputBytes));
    }
}

/// <summary>Observes commits of the runtime in this process.</summary>
public interface IJobObserver
{
    /// <summary>Called after events are committed, with the job's state after them. Must return quickly.</summary>
    void OnCommitted(State.JobState state, IReadOnlyList<Events.EventEnvelope> events);
}
