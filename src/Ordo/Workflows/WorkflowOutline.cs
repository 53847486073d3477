using Ordo.Workflows.Yaml;

namespace Ordo.Workflows;

/// <summary>
/// What a project's checks need to know of one of its workflows, without loading it: its name, version and agents. The
/// releases of <c>ordo.yaml</c> name workflows and versions, and its faults name agents, that only the workflow files define.
/// </summary>
/// <param name="Name">The workflow name.</param>
/// <param name="Version">Its version.</param>
/// <param name="Agents">The names of its agents.</param>
public sealed record WorkflowOutline(string Name, int Version, IReadOnlyList<string> Agents)
{
    /// <summary>The outline of a loaded workflow and of its sub-workflows.</summary>
    public static IEnumerable<WorkflowOutline> Of(WorkflowDefinition definition)
    {
        ArgumentNullException.ThrowIfNull(definition);
        yield return new WorkflowOutline(definition.Name, definition.Version, [.. definition.Agents.Keys]);
        foreach (var child in definition.SubWorkflows.Values.SelectMany(Of)) yield return child;
    }

    /// <summary>
    /// Reads the outline of a workflow file: its top-level <c>workflow</c>, <c>version</c> and the keys of <c>agents</c>.
    /// Null when the file is not a readable workflow (its own load reports why, where it is loaded).
    /// </summary>
    public static WorkflowOutline? Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        var root = YamlDocumentLoader.Load(path, text, new ProblemList());
        if (root is not { IsMapping: true } r) return null;
        string? name = null;
        long version = 0;
        List<string> agents = [];
        foreach (var (key, _, value) in r.Entries())
        {
            switch (key)
            {
                case "workflow" when value.IsScalar:
                    name = value.Scalar;
                    break;
                case "version" when value.TryGetLong(out var v):
                    version = v;
                    break;
                case "agents" when value.IsMapping:
                    agents.AddRange(value.Entries().Select(e => e.Key));
                    break;
            }
        }

        return string.IsNullOrEmpty(name) || version is < 1 or > int.MaxValue ? null : new WorkflowOutline(name, (int)version, agents);
    }
}
