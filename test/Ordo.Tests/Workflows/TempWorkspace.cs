using Ordo.Workflows;

namespace Ordo.Tests.Workflows;

/// <summary>A temporary folder (<c>ordo-tests-GUID</c>) that tests write workflow files into; deleted on dispose.</summary>
internal sealed class TempWorkspace : IDisposable
{
    public TempWorkspace()
    {
        Root = Path.Combine(Path.GetTempPath(), "ordo-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Root);
    }

    public string Root { get; }

    public string PathOf(string relative) => Path.Combine(Root, relative);

    /// <summary>Writes a file (creating folders) and returns its absolute path.</summary>
    public string Write(string relative, string content)
    {
        var path = PathOf(relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        return path;
    }

    public Task<WorkflowDefinition> LoadAsync(string workflow = "wf.yaml", string? config = null, WorkflowLoadOptions? options = null)
        => WorkflowLoader.LoadFileAsync(PathOf(workflow), config is null ? null : PathOf(config), options);

    /// <summary>Loads a workflow that must be invalid and returns every problem reported.</summary>
    public async Task<IReadOnlyList<ValidationProblem>> ProblemsAsync(string workflow = "wf.yaml", string? config = null, WorkflowLoadOptions? options = null)
    {
        var e = await Assert.ThrowsAsync<OrdoValidationException>(() => LoadAsync(workflow, config, options));
        Assert.NotEmpty(e.Problems);
        return e.Problems;
    }

    /// <summary>Loads a project configuration that must be invalid and returns every problem reported.</summary>
    public async Task<IReadOnlyList<ValidationProblem>> ProjectProblemsAsync(string config = "ordo.yaml")
    {
        var e = await Assert.ThrowsAsync<OrdoValidationException>(() => WorkflowLoader.LoadProjectAsync(PathOf(config)));
        Assert.NotEmpty(e.Problems);
        return e.Problems;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // A file still open on a slow file system: the OS cleans the temp folder eventually.
        }
    }
}
