namespace Ordo.Storage;

/// <summary>Helpers for <see cref="IJobJournal.CommitInOrder"/>.</summary>
public static class OrderedCommits
{
    /// <summary>Commits <paramref name="commits"/> one after the other through <see cref="IJobJournal.CommitAsync"/>, each after the previous one ended (whether or not it failed).</summary>
    public static IReadOnlyList<Task<CommitResult>> OneByOne(IJobJournal store, IReadOnlyList<JobCommit> commits, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(commits);
        var tasks = new Task<CommitResult>[commits.Count];
        Task previous = Task.CompletedTask;
        for (var i = 0; i < commits.Count; i++)
        {
            tasks[i] = AfterAsync(store, previous, commits[i], cancellationToken);
            previous = tasks[i];
        }

        return tasks;
    }

    private static async Task<CommitResult> AfterAsync(IJobJournal store, Task before, JobCommit commit, CancellationToken cancellationToken)
    {
        try
        {
            await before.ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The previous commit's failure is reported by its own task; this one is still attempted.
        }

        return await store.CommitAsync(commit, cancellationToken).ConfigureAwait(false);
    }
}
