using System.Collections.Concurrent;
using Ordo.Storage;
using Ordo.Workflows;

namespace Ordo.Engine;

/// <summary>
/// Finds the definition a job is pinned to: workflows built in code are registered here by hash; workflows from
/// files are loaded once from the bundle stored with the job, and cached by hash.
/// </summary>
/// <remarks>Thread-safe.</remarks>
public sealed class WorkflowRegistry
{
    private readonly ConcurrentDictionary<string, WorkflowDefinition> _byHash = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Lazy<Task<WorkflowDefinition>>> _loading = new(StringComparer.Ordinal);

    /// <summary>Makes a definition known to this process (required for workflows built in code).</summary>
    public void Register(WorkflowDefinition definition)
    {
        ArgumentNullException.ThrowIfNull(definition);
        if (string.IsNullOrEmpty(definition.Hash))
        {
            throw new ArgumentException("The definition has no hash: build it with WorkflowBuilder or load it with WorkflowLoader.", nameof(definition));
        }

        _byHash[definition.Hash] = definition;
        foreach (var previous in definition.PreviousHashes) _byHash.TryAdd(previous, definition);
    }

    /// <summary>The registered definitions.</summary>
    public IEnumerable<WorkflowDefinition> Registered => _byHash.Values.Distinct();

    /// <summary>Returns the definition with this hash, loading it from the store if needed.</summary>
    /// <exception cref="OrdoException">The definition is unknown, or is built in code and not registered in this process.</exception>
    /// <exception cref="DefinitionUnavailableException">The definition needs something this process does not provide.</exception>
    /// <exception cref="Audit.DefinitionChangedException">The stored definition no longer has the hash the job recorded.</exception>
    public async Task<WorkflowDefinition> GetAsync(IOrdoStore store, string hash, WorkflowLoadOptions loadOptions, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        if (_byHash.TryGetValue(hash, out var known))
        {
            return known;
        }

        var lazy = _loading.GetOrAdd(hash, h => new Lazy<Task<WorkflowDefinition>>(() => LoadAsync(store, h, loadOptions, cancellationToken)));
        try
        {
            var definition = await lazy.Value.ConfigureAwait(false);
            _byHash[hash] = definition;
            return definition;
        }
        catch
        {
            _loading.TryRemove(hash, out _);
            throw;
        }
    }

    private static async Task<WorkflowDefinition> LoadAsync(IOrdoStore store, string hash, WorkflowLoadOptions loadOptions, CancellationToken cancellationToken)
    {
        var record = await store.GetDefinitionAsync(hash, cancellationToken).ConfigureAwait(false)
            ?? throw new OrdoException($"definition {hash} is not in the store");
        // The hash comes from the job's JobSubmitted event, which its chain covers; the stored bytes are checked
        // against it every time they are loaded, so a definition edited in the database is never run.
        if (Audit.DefinitionIntegrity.Problem(record, hash) is { } changed)
        {
            throw new Audit.DefinitionChangedException(record.Workflow, record.Version, hash, changed);
        }

        var bundle = DefinitionBundle.FromBytes(record.Content);
        if (bundle.CodeDefined is not null)
        {
            throw new OrdoException($"workflow {record.Workflow}@{record.Version} is built in code; register the same definition (hash {hash}) in this process to run its jobs");
        }

        try
        {
            return await WorkflowLoader.LoadBundleAsync(bundle, loadOptions, cancellationToken).ConfigureAwait(false);
        }
        catch (OrdoException e) when (e is not DefinitionUnavailableException)
        {
            // The stored files are the job's own; what can be missing is what this process must provide beside them:
            // a code agent or tool, a plugin assembly, an environment variable.
            throw new DefinitionUnavailableException(record.Workflow, record.Version, e);
        }
    }
}

/// <summary>
/// A job's stored definition cannot be used in this process: something the definition needs from the process is
/// missing (a code agent or tool not registered, a plugin assembly not found, an environment variable not set).
/// The job's own files are stored with it and never re-read, so this is about the process, not the project folder.
/// </summary>
public sealed class DefinitionUnavailableException(string workflow, int version, Exception cause)
    : OrdoException($"the stored definition of {workflow}@{version} cannot be used in this process: {cause.Message}", cause)
{
    /// <summary>The workflow's name.</summary>
    public string Workflow { get; } = workflow;

    /// <summary>The workflow's version.</summary>
    public int Version { get; } = version;
}
