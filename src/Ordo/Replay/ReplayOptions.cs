using Ordo.Agents;
using Ordo.Storage;
using Ordo.Workflows;

namespace Ordo.Replay;

/// <summary>How a job is replayed.</summary>
public sealed class ReplayOptions
{
    /// <summary>
    /// An empty store the replay writes its job to (an in-memory one: <c>new InMemoryOrdoStore()</c> of Ordo.Testing).
    /// It is never the store the job was recorded in: a replay changes nothing there.
    /// </summary>
    public required IOrdoStore Store { get; init; }

    /// <summary>The definition to replay against; null: the one the job was recorded with.</summary>
    public WorkflowDefinition? Workflow { get; init; }

    /// <summary>Code agents and tools (they run again: they are the workflow's own code, not outside calls). Default: none.</summary>
    public CodeRegistry Code { get; init; } = new();

    /// <summary>The clock of the replay. Default: the system clock.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}
