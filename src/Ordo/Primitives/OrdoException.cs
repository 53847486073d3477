namespace Ordo;

/// <summary>Base type of the errors Ordo reports to its users; the message always says what was wrong and where.</summary>
public class OrdoException : Exception
{
    /// <summary>Creates an error with a message.</summary>
    public OrdoException(string message) : base(message) { }

    /// <summary>Creates an error with a message and its cause.</summary>
    public OrdoException(string message, Exception? innerException) : base(message, innerException) { }
}

/// <summary>
/// A request was refused: what was asked is not allowed now or for this caller (a tenant over its quota, an approval by
/// someone who may not give it, a decision on an approval that is no longer pending). Nothing was created or changed;
/// the message says what was refused and why. Hosts report it as the caller's error (the CLI exits 2, a server answers 4xx).
/// </summary>
public class OrdoRefusedException : OrdoException
{
    /// <summary>Creates a refusal with a message.</summary>
    public OrdoRefusedException(string message) : base(message) { }

    /// <summary>Creates a refusal with a message and its cause.</summary>
    public OrdoRefusedException(string message, Exception? innerException) : base(message, innerException) { }
}

/// <summary>An input (a workflow, a configuration, a job input, an argument) is invalid; nothing was created or changed.</summary>
public class OrdoValidationException : OrdoException
{
    /// <summary>Creates the error from the list of problems found.</summary>
    public OrdoValidationException(IReadOnlyList<ValidationProblem> problems)
        : base(FormatProblems(problems)) => Problems = problems;

    /// <summary>Creates the error from a single message.</summary>
    public OrdoValidationException(string message)
        : this([new ValidationProblem(null, 0, 0, "", message)]) { }

    /// <summary>Every problem found, in file order.</summary>
    public IReadOnlyList<ValidationProblem> Problems { get; }

    private static string FormatProblems(IReadOnlyList<ValidationProblem> problems)
        => problems.Count == 1 ? problems[0].ToString() : $"{problems.Count} problems:{Environment.NewLine}" + string.Join(Environment.NewLine, problems.Select(p => "  " + p));
}

/// <summary>One problem found while validating a file or a value: where it is and what is wrong.</summary>
/// <param name="File">The file, as the user named it, or null for a value that does not come from a file.</param>
/// <param name="Line">1-based line, or 0 when unknown.</param>
/// <param name="Column">1-based column, or 0 when unknown.</param>
/// <param name="Path">The key path, like <c>steps[3].retry.backoff</c>.</param>
/// <param name="Message">What is wrong.</param>
public sealed record ValidationProblem(string? File, int Line, int Column, string Path, string Message)
{
    /// <inheritdoc />
    public override string ToString()
    {
        var where = File is null ? "" : Line > 0 ? $"{File}:{Line}:{Column}: " : $"{File}: ";
        var path = string.IsNullOrEmpty(Path) ? "" : $"{Path}: ";
        return where + path + Message;
    }
}
