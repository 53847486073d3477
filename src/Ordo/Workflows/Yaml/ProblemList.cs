namespace Ordo.Workflows.Yaml;

/// <summary>Collects validation problems so that one load reports all of them, in file order.</summary>
internal sealed class ProblemList
{
    private readonly List<ValidationProblem> _problems = [];

    public int Count => _problems.Count;

    public IReadOnlyList<ValidationProblem> Items => _problems;

    public void Add(string? file, int line, int column, string path, string message)
        => _problems.Add(new ValidationProblem(file, line, column, path, message));

    public void Add(YNode at, string message) => Add(at.File, at.Line, at.Column, at.Path, message);

    public void Add(ValidationProblem problem) => _problems.Add(problem);

    public void ThrowIfAny()
    {
        if (_problems.Count > 0)
        {
            throw new OrdoValidationException(_problems
                .OrderBy(p => p.File, StringComparer.Ordinal).ThenBy(p => p.Line).ThenBy(p => p.Column)
                .ToList());
        }
    }
}
