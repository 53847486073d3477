using Ordo.Stats;

namespace Ordo.Storage;

/// <summary>
/// The summary rows of jobs and of their agents, kept by the store in the transaction of each commit (see
/// <see cref="JobStatsDelta"/>), and their sums for <c>ordo stats</c>: read with indexed queries, never from the events.
/// </summary>
public interface IStatsStore
{
    /// <summary>Sums the summary rows of the jobs created in the window, per workflow version and per agent and prompt hash.</summary>
    ValueTask<StatsData> ReadStatsAsync(StatsQuery query, CancellationToken cancellationToken = default);
}
