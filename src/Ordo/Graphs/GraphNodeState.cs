namespace Ordo.Graphs;

/// <summary>What a job did at one node of its workflow's graph.</summary>
/// <param name="Status">
/// <c>not_run</c>, <c>scheduled</c>, <c>running</c>, <c>waiting</c> (a coordinating step waiting for its branches),
/// <c>blocked</c>, <c>waiting_approval</c>, <c>succeeded</c>, <c>failed</c> or <c>cancelled</c> for a step; <c>completed</c>, <c>failed</c> or <c>not_run</c> for the end and failure nodes.
/// </param>
/// <param name="Attempts">Attempts over all visits (and all branches and items).</param>
/// <param name="Runs">Visits over all branches and items: above 1 for a step in a loop or run per item.</param>
public sealed record GraphNodeState(string Status, int Attempts, int Runs)
{
    /// <summary>A node the job has not reached.</summary>
    public static GraphNodeState NotRun { get; } = new("not_run", 0, 0);

    /// <summary>The status in words: <c>not run</c>, <c>waiting approval</c>, …</summary>
    public string StatusText => Status.Replace('_', ' ');
}
