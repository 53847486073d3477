using Ordo.State;

namespace Ordo.Cli.Hosting;

/// <summary>A job and the jobs under it (sub-workflows), as far as waiting for people goes.</summary>
internal static class JobTree
{
    private const int MostJobs = 1_000;

    /// <summary>
    /// The jobs under <paramref name="job"/> that wait for an approval, when the job itself can go no further without
    /// them: it is running, none of its own steps is scheduled or running (only coordinating steps wait), and each of
    /// its open child jobs waits the same way. Empty when the job waits for itself, runs, or has ended.
    /// </summary>
    public static async Task<IReadOnlyList<JobState>> WaitingUnderAsync(CliHost host, JobState job)
    {
        var found = new List<JobState>();
        return job.Status == JobStatus.Running && await BlockedAsync(host, job, found).ConfigureAwait(false)
            ? [.. found.OrderBy(j => j.CreatedAt)]
            : [];
    }

    private static async Task<bool> BlockedAsync(CliHost host, JobState job, List<JobState> found)
    {
        if (!job.Open.Values.All(w => w.Status == "waiting")) return false;
        var any = false;
        foreach (var child in await host.Store.ListJobsAsync(new Storage.JobQuery { ParentJobId = job.JobId, Limit = MostJobs }, CancellationToken.None).ConfigureAwait(false))
        {
            if (child.Status.IsTerminal()) continue;
            if (found.Count >= MostJobs || await host.Runtime.GetStateAsync(child.JobId, CancellationToken.None).ConfigureAwait(false) is not { } state) return false;
            if (state.Status == JobStatus.WaitingApproval)
            {
                found.Add(state);
                any = true;
            }
            else if (state.Status == JobStatus.Running && await BlockedAsync(host, state, found).ConfigureAwait(false))
            {
                any = true;
            }
            else
            {
                return false;
            }
        }

        return any;
    }
}
