namespace Ordo.Engine;

/// <summary>
/// Names a worker as <c>host/pid/instance</c>: the host and process for people reading a lease or an event, and an
/// instance id unique to this runtime. Whether a worker is alive is never guessed from its name (process ids are reused,
/// process start times are read differently by different readers): the store proves it (see
/// <see cref="Storage.IQueueStore.GetWorkerLiveness"/>), or the worker's leases are waited out.
/// </summary>
public static class WorkerIdentity
{
    /// <summary>A new worker name for this process.</summary>
    public static string Create(string? instance = null)
        => $"{Environment.MachineName}/{Environment.ProcessId}/{instance ?? Guid.NewGuid().ToString("N")[..12]}";
}
