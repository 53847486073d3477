namespace Ordo.Workflows;

/// <summary>What the loader can check beyond the files themselves.</summary>
public sealed class WorkflowLoadOptions
{
    /// <summary>Default options: no registry checks.</summary>
    public static WorkflowLoadOptions Default { get; } = new();

    /// <summary>Tells whether a code agent type is registered (host or plugin); null skips the check.</summary>
    public Func<string, bool>? CodeAgentExists { get; init; }

    /// <summary>Tells whether a code tool is registered by type or name; null skips the check.</summary>
    public Func<string, bool>? CodeToolExists { get; init; }

    /// <summary>Called with the project as soon as <c>ordo.yaml</c> is read, before the workflow is checked (to load its plugins).</summary>
    public Action<Configuration.ProjectDefinition>? ProjectLoaded { get; init; }

    /// <summary>Tells whether a sub-workflow <c>name@version</c> can be found; null skips the check.</summary>
    public Func<WorkflowReference, bool>? WorkflowExists { get; init; }

    /// <summary>
    /// Whether a secret that is set is too short to be redacted (see <see cref="Gateway.SecretResolver.MinLength"/>):
    /// a model or tool definition that uses one is refused when it is loaded, not when its first call runs. Null: not
    /// checked at load.
    /// </summary>
    public Func<string, bool>? SecretTooShort { get; init; }
}
