using Microsoft.Extensions.Options;
using Ordo.Engine;
using Ordo.Workflows;

namespace Ordo.Server;

/// <summary>
/// The workflows the API submits by name (<c>"name"</c>: the highest version; <c>"name@3"</c>: that version) and lists:
/// those of <see cref="OrdoServerOptions.Workflows"/>, else those registered in the runtime's <see cref="WorkflowRegistry"/>.
/// </summary>
/// <remarks>Thread-safe.</remarks>
public sealed class ServerWorkflows(IOptions<OrdoServerOptions> options, WorkflowRegistry registry)
{
    /// <summary>Every workflow, by name and then version.</summary>
    public IReadOnlyList<WorkflowDefinition> All
    {
        get
        {
            var configured = options.Value.Workflows;
            IEnumerable<WorkflowDefinition> all = configured.Count > 0 ? configured : registry.Registered;
            return all.DistinctBy(d => d.Ref).OrderBy(d => d.Name, StringComparer.Ordinal).ThenBy(d => d.Version).ToList();
        }
    }

    /// <summary>Finds <c>name</c> (its highest version) or <c>name@VERSION</c>.</summary>
    public bool TryResolve(string reference, out WorkflowDefinition? workflow)
    {
        ArgumentNullException.ThrowIfNull(reference);
        var at = reference.LastIndexOf('@');
        var name = at > 0 ? reference[..at] : reference;
        int? version = null;
        if (at > 0)
        {
            if (!int.TryParse(reference[(at + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v))
            {
                workflow = null;
                return false;
            }

            version = v;
        }

        workflow = All.Where(d => d.Name == name && (version is null || d.Version == version)).MaxBy(d => d.Version);
        return workflow is not null;
    }
}
