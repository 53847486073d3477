using Ordo.Storage;

namespace Ordo.Replay;

/// <summary>
/// Everything a replay needs of a job, and nothing from outside it: the job tree with its events (every model answer
/// and tool result is in them) and the definitions the jobs were pinned to. Read from a store, or from a file of
/// <c>ordo export</c> (<see cref="JobExport"/>).
/// </summary>
public sealed class JobRecording
{
    /// <summary>The job (and its sub-workflow jobs).</summary>
    public required RecordedJob Root { get; init; }

    /// <summary>The stored definitions of the jobs of the tree, by hash.</summary>
    public required IReadOnlyDictionary<string, DefinitionRecord> Definitions { get; init; }

    /// <summary>The export file the recording was read from (<see cref="JobExport.Parse"/>); null when it was read from a store.</summary>
    public string? File { get; init; }

    /// <summary>Reads a job, its child jobs and their definitions from a store; null when the job does not exist.</summary>
    public static async Task<JobRecording?> ReadAsync(IJobJournal store, JobId jobId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        var job = await store.GetJobAsync(jobId, cancellationToken).ConfigureAwait(false);
        if (job is null) return null;
        var definitions = new Dictionary<string, DefinitionRecord>(StringComparer.Ordinal);
        var root = await ReadJobAsync(store, job, definitions, cancellationToken).ConfigureAwait(false);
        return new JobRecording { Root = root, Definitions = definitions };
    }

    private static async Task<RecordedJob> ReadJobAsync(IJobJournal store, JobRecord job, Dictionary<string, DefinitionRecord> definitions, CancellationToken cancellationToken)
    {
        var events = new List<Events.EventEnvelope>();
        await foreach (var e in store.ReadEventsAsync(job.JobId, 0, cancellationToken).ConfigureAwait(false))
        {
            events.Add(e);
        }

        if (!definitions.ContainsKey(job.DefinitionHash)
            && await store.GetDefinitionAsync(job.DefinitionHash, cancellationToken).ConfigureAwait(false) is { } definition)
        {
            definitions[job.DefinitionHash] = definition;
        }

        var children = new List<RecordedJob>();
        foreach (var child in (await store.ListJobsAsync(new JobQuery { ParentJobId = job.JobId, Limit = 100_000 }, cancellationToken).ConfigureAwait(false))
            .OrderBy(c => c.CreatedAt).ThenBy(c => c.JobId.Value, StringComparer.Ordinal))
        {
            children.Add(await ReadJobAsync(store, child, definitions, cancellationToken).ConfigureAwait(false));
        }

        return new RecordedJob(job, events, children);
    }
}
