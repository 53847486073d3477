using Ordo.Workflows.Loading;

namespace Ordo.Workflows;

/// <summary>
/// Loads workflow files (and the <c>ordo.yaml</c> beside them) into validated <see cref="WorkflowDefinition"/>s.
/// Every problem is reported with file, line, column and key path; nothing is created when a file is invalid.
/// </summary>
public static class WorkflowLoader
{
    /// <summary>The name of the project configuration file looked for beside a workflow.</summary>
    public const string ConfigFileName = "ordo.yaml";

    /// <summary>Loads a workflow file. Without <paramref name="configPath"/>, <c>ordo.yaml</c> beside the workflow is used if it exists.</summary>
    /// <exception cref="OrdoValidationException">The workflow, the config or a file they name is invalid.</exception>
    public static async Task<WorkflowDefinition> LoadFileAsync(string workflowPath, string? configPath = null, WorkflowLoadOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowPath);
        var workflow = Path.GetFullPath(workflowPath);
        var source = new PhysicalDefinitionFileSource();
        if (!File.Exists(workflow))
        {
            throw new OrdoValidationException([new ValidationProblem(workflowPath, 0, 0, "", "the workflow file does not exist")]);
        }

        string? config;
        if (configPath is not null)
        {
            config = Path.GetFullPath(configPath);
            if (!File.Exists(config))
            {
                throw new OrdoValidationException([new ValidationProblem(configPath, 0, 0, "", "the config file does not exist")]);
            }
        }
        else
        {
            var beside = Path.Combine(Path.GetDirectoryName(workflow)!, ConfigFileName);
            config = File.Exists(beside) ? beside : null;
        }

        var (definition, children) = await LoadAsync(source, workflow, config, options ?? WorkflowLoadOptions.Default, null, cancellationToken).ConfigureAwait(false);
        var root = Path.GetDirectoryName(config ?? workflow)!;
        string Key(string abs) => Path.GetRelativePath(root, abs).Replace(Path.DirectorySeparatorChar, '/');
        var bundle = new DefinitionBundle
        {
            Entry = Key(workflow),
            Config = config is null ? null : Key(config),
            Root = root,
            Files = new SortedDictionary<string, string>(source.FilesRead.ToDictionary(kv => Key(kv.Key), kv => kv.Value), StringComparer.Ordinal),
            Directories = source.DirectoriesFound.Count == 0 ? null : [.. source.DirectoriesFound.Select(Key).Order(StringComparer.Ordinal)],
            Workflows = children.Count == 0 ? null : new SortedDictionary<string, string>(children.ToDictionary(c => c.Key, c => Key(c.Value.Path)), StringComparer.Ordinal),
        };
        Pin(definition, bundle, children);
        return definition;
    }

    /// <summary>Loads the definition a job was submitted with, from its stored bundle; reads no file.</summary>
    /// <exception cref="OrdoValidationException">The stored definition no longer validates (for example a code agent is no longer registered).</exception>
    public static async Task<WorkflowDefinition> LoadBundleAsync(DefinitionBundle bundle, WorkflowLoadOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        var source = new BundleDefinitionFileSource(bundle);
        var workflow = Path.GetFullPath(Path.Combine(bundle.Root, bundle.Entry));
        var config = bundle.Config is null ? null : Path.GetFullPath(Path.Combine(bundle.Root, bundle.Config));
        var (definition, children) = await LoadAsync(source, workflow, config, options ?? WorkflowLoadOptions.Default, bundle, cancellationToken).ConfigureAwait(false);
        Pin(definition, bundle, children);
        return definition;
    }

    /// <summary>Gives a definition and its sub-workflows their stored form: the same files, each with its own entry.</summary>
    private static void Pin(WorkflowDefinition definition, DefinitionBundle bundle, Dictionary<string, (WorkflowDefinition Definition, string Path)> children)
    {
        definition.Bundle = bundle;
        definition.Hash = bundle.ComputeHash();
        foreach (var (reference, child) in children)
        {
            var entry = bundle.Workflows![reference];
            var own = new DefinitionBundle { Entry = entry, Config = bundle.Config, Root = bundle.Root, Files = bundle.Files, Workflows = bundle.Workflows, Directories = bundle.Directories };
            child.Definition.Bundle = own;
            child.Definition.Hash = own.ComputeHash();
        }
    }

    /// <summary>Loads only a project configuration (<c>ordo.yaml</c> and the tool files it names), for workflows built in C#.</summary>
    /// <exception cref="OrdoValidationException">The configuration is invalid.</exception>
    public static async Task<Configuration.ProjectDefinition> LoadProjectAsync(string configPath, WorkflowLoadOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(configPath);
        var config = Path.GetFullPath(configPath);
        var ctx = new LoadContext(new PhysicalDefinitionFileSource(), options ?? WorkflowLoadOptions.Default, cancellationToken);
        if (!File.Exists(config))
        {
            throw new OrdoValidationException([new ValidationProblem(configPath, 0, 0, "", "the config file does not exist")]);
        }

        var project = await ProjectLoader.LoadAsync(ctx, config, Path.GetDirectoryName(config)!).ConfigureAwait(false);
        ctx.Problems.ThrowIfAny();
        return project;
    }

    private static async Task<(WorkflowDefinition, Dictionary<string, (WorkflowDefinition Definition, string Path)>)> LoadAsync(
        DefinitionFileSource source, string workflow, string? config, WorkflowLoadOptions options, DefinitionBundle? bundle, CancellationToken cancellationToken)
    {
        var ctx = new LoadContext(source, options, cancellationToken);
        var project = await ProjectLoader.LoadAsync(ctx, config, Path.GetDirectoryName(workflow)!).ConfigureAwait(false);
        if (ctx.Problems.Count == 0)
        {
            options.ProjectLoaded?.Invoke(project);
        }
        else
        {
            ctx.PluginsNotLoaded = true;
        }

        var definition = await WorkflowFileLoader.LoadAsync(ctx, workflow, project).ConfigureAwait(false);
        ctx.Problems.ThrowIfAny();
        if (definition is null) throw new OrdoValidationException(source.Display(workflow) + ": the workflow could not be loaded");
        var children = new Dictionary<string, (WorkflowDefinition Definition, string Path)>(StringComparer.Ordinal);
        await SubWorkflowResolver.ResolveAsync(ctx, definition, workflow, project, bundle, children).ConfigureAwait(false);
        ctx.Problems.ThrowIfAny();
        return (definition, children);
    }
}
