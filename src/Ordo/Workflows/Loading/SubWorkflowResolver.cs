using System.Text.RegularExpressions;
using Ordo.Configuration;

namespace Ordo.Workflows.Loading;

/// <summary>
/// Finds and loads the workflows that <c>workflow: NAME@VERSION</c> steps and <c>foreach … do: NAME@VERSION</c> run:
/// among the workflow files in the parent's folder and in <c>ordo.yaml</c>'s <c>workflows:</c> folders (or, for a
/// stored definition, in its bundle). They are validated like the parent, pinned with it, and a cycle is an error.
/// </summary>
internal static partial class SubWorkflowResolver
{
    public static async Task ResolveAsync(LoadContext ctx, WorkflowDefinition parent, string parentPath, ProjectDefinition project, DefinitionBundle? bundle,
        Dictionary<string, (WorkflowDefinition Definition, string Path)> resolved)
    {
        await ResolveAsync(ctx, parent, parentPath, project, bundle, resolved, [parent.Ref]).ConfigureAwait(false);
    }

    private static async Task ResolveAsync(LoadContext ctx, WorkflowDefinition parent, string parentPath, ProjectDefinition project, DefinitionBundle? bundle,
        Dictionary<string, (WorkflowDefinition Definition, string Path)> resolved, List<string> chain)
    {
        var own = new Dictionary<string, WorkflowDefinition>(StringComparer.Ordinal);
        foreach (var step in parent.Steps)
        {
            var (reference, key) = step switch
            {
                SubWorkflowStep w => (w.Workflow, "workflow"),
                ForeachStep { DoWorkflow: { } d } => (d, "do"),
                _ => (null, ""),
            };
            if (reference is null) continue;
            var name = reference.ToString();
            var node = ctx.StepNodes.TryGetValue(step, out var sn) ? sn.Find(key) ?? sn : (Yaml.YNode?)null;
            void Problem(string message)
            {
                if (node is { } n) ctx.Problems.Add(n, message);
                else ctx.Problems.Add(step.Location.File, step.Location.Line, step.Location.Column, step.Location.Path, message);
            }

            if (chain.Contains(name, StringComparer.Ordinal))
            {
                Problem($"sub-workflow cycle: {string.Join(" → ", chain)} → {name}");
                continue;
            }

            if (resolved.TryGetValue(name, out var known))
            {
                own[name] = known.Definition;
                continue;
            }

            var path = bundle is not null ? FromBundle(bundle, name) : Find(parentPath, project, reference);
            if (path is null)
            {
                var folders = new[] { Path.GetDirectoryName(parentPath)! }.Concat(project.WorkflowFolders).Distinct(StringComparer.Ordinal);
                Problem($"workflow '{name}' was not found: no workflow file with 'workflow: {reference.Name}' and 'version: {reference.Version}' in {string.Join(", ", folders)} (add folders with 'workflows:' in ordo.yaml)");
                continue;
            }

            var child = await WorkflowFileLoader.LoadAsync(ctx, path, project).ConfigureAwait(false);
            if (child is null) continue;
            if (child.Name != reference.Name || child.Version != reference.Version)
            {
                Problem($"workflow '{name}' resolved to {ctx.Files.Display(path)}, which defines {child.Ref}");
                continue;
            }

            resolved[name] = (child, path);
            own[name] = child;
            await ResolveAsync(ctx, child, path, project, bundle, resolved, [.. chain, name]).ConfigureAwait(false);
        }

        parent.SubWorkflows = own;
    }

    private static string? FromBundle(DefinitionBundle bundle, string name)
        => bundle.Workflows is { } map && map.TryGetValue(name, out var key) ? Path.GetFullPath(Path.Combine(bundle.Root, key)) : null;

    /// <summary>The workflow file defining <paramref name="reference"/> in the parent's folder or the project's workflow folders.</summary>
    private static string? Find(string parentPath, ProjectDefinition project, WorkflowReference reference)
    {
        var folders = new[] { Path.GetDirectoryName(parentPath)! }.Concat(project.WorkflowFolders).Distinct(StringComparer.Ordinal);
        foreach (var folder in folders.Where(Directory.Exists))
        {
            foreach (var file in Directory.EnumerateFiles(folder).Where(f => f.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".yml", StringComparison.OrdinalIgnoreCase)).Order(StringComparer.Ordinal))
            {
                if (Path.GetFileName(file).Equals(WorkflowLoader.ConfigFileName, StringComparison.OrdinalIgnoreCase)) continue;
                string text;
                try
                {
                    text = File.ReadAllText(file);
                }
                catch (IOException)
                {
                    continue;
                }

                var name = WorkflowHeader().Match(text);
                var version = VersionHeader().Match(text);
                if (name.Success && version.Success && name.Groups[1].Value == reference.Name
                    && int.TryParse(version.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture, out var v) && v == reference.Version)
                {
                    return Path.GetFullPath(file);
                }
            }
        }

        return null;
    }

    [GeneratedRegex(@"^workflow:\s*[""']?([a-z0-9-]+)[""']?\s*(?:#.*)?$", RegexOptions.Multiline)]
    private static partial Regex WorkflowHeader();

    [GeneratedRegex(@"^version:\s*[""']?([0-9]+)[""']?\s*(?:#.*)?$", RegexOptions.Multiline)]
    private static partial Regex VersionHeader();
}
