using System.Globalization;
using Ordo.Releases;
using Ordo.Workflows;

namespace Ordo.Configuration;

/// <summary>
/// The checks of <c>ordo.yaml</c> that need the project's workflows, which loading the config alone does not read: each
/// release names a workflow of the project and versions it has (<c>releases.NAME.stable</c>, <c>.canary.version</c>,
/// <c>.shadow.version</c>), and each model fault's <c>agent</c> is an agent of one of its workflows. Hosts run them once
/// they know the workflows (the CLI from the project's workflow files, a server from those it registers): a release of
/// a version that does not exist would otherwise fail every submission by name, or silently run another version.
/// </summary>
public static class ProjectChecks
{
    /// <summary>The problems of a project's releases and faults against its workflows, each naming where it is written; empty when there are none.</summary>
    /// <param name="project">The project.</param>
    /// <param name="workflows">Its workflows (every version of each).</param>
    public static IReadOnlyList<ValidationProblem> Check(ProjectDefinition project, IEnumerable<WorkflowOutline> workflows)
    {
        ArgumentNullException.ThrowIfNull(project);
        ArgumentNullException.ThrowIfNull(workflows);
        var all = workflows.ToList();
        var problems = new List<ValidationProblem>();
        foreach (var release in project.Releases.Values.OrderBy(r => r.Workflow, StringComparer.Ordinal))
        {
            problems.AddRange(CheckRelease(release, all));
        }

        var agents = all.SelectMany(w => w.Agents).ToHashSet(StringComparer.Ordinal);
        for (var i = 0; i < project.Faults.Models.Count; i++)
        {
            var fault = project.Faults.Models[i];
            if (fault.Agent is not { } agent || agents.Contains(agent)) continue;
            var at = fault.AgentAt ?? new SourceLocation(null, 0, 0, $"faults.models[{i}].agent");
            problems.Add(new ValidationProblem(at.File, at.Line, at.Column, at.Path,
                $"no workflow of the project has an agent '{agent}' (agents: {(agents.Count == 0 ? "none" : string.Join(", ", agents.Order(StringComparer.Ordinal)))})"));
        }

        return problems;
    }

    /// <summary>The problems of one release against the workflows found: a workflow the project does not have, or a version it does not have.</summary>
    public static IReadOnlyList<ValidationProblem> CheckRelease(ReleaseDefinition release, IEnumerable<WorkflowOutline> workflows)
    {
        ArgumentNullException.ThrowIfNull(release);
        ArgumentNullException.ThrowIfNull(workflows);
        var all = workflows.ToList();
        var key = $"releases.{release.Workflow}";
        var source = release.Source;
        var versions = all.Where(w => w.Name == release.Workflow).Select(w => w.Version).Distinct().Order().ToList();
        if (versions.Count == 0)
        {
            var names = all.Select(w => w.Name).Distinct().Order(StringComparer.Ordinal).ToList();
            return [Problem(source?.Release, key,
                $"the project has no workflow '{release.Workflow}' to release (its workflows: {(names.Count == 0 ? "none" : string.Join(", ", names))})")];
        }

        var problems = new List<ValidationProblem>();
        var found = string.Join(", ", versions.Select(v => v.ToString(CultureInfo.InvariantCulture)));
        void Version(int? version, SourceLocation? at, string path, string what)
        {
            if (version is { } v && !versions.Contains(v))
            {
                problems.Add(Problem(at, $"{key}.{path}", $"the {what} of '{release.Workflow}' is version {v}, which does not exist (versions found: {found})"));
            }
        }

        Version(release.Stable, source?.Stable, "stable", "stable version");
        Version(release.Canary?.Version, source?.CanaryVersion, "canary.version", "canary");
        Version(release.Shadow?.Version, source?.ShadowVersion, "shadow.version", "shadow");
        return problems;
    }

    /// <summary>Throws the problems of <see cref="Check"/>, if any.</summary>
    /// <exception cref="OrdoValidationException">A release or a fault names what the project's workflows do not have.</exception>
    public static void ThrowIfInvalid(ProjectDefinition project, IEnumerable<WorkflowOutline> workflows)
    {
        if (Check(project, workflows) is { Count: > 0 } problems) throw new OrdoValidationException(problems);
    }

    private static ValidationProblem Problem(SourceLocation? at, string path, string message)
        => new(at?.File, at?.Line ?? 0, at?.Column ?? 0, at?.Path is { Length: > 0 } p ? p : path, message);
}
