using Acornima;
using Acornima.Ast;
using Jint;

namespace Ordo.Expressions;

/// <summary>
/// A JavaScript expression, parsed once when its file is loaded. It is evaluated as the body of a function
/// whose parameters are the context names (<see cref="ExpressionScope.Names"/>), in a sandboxed engine.
/// </summary>
public sealed class CompiledExpression
{
    private const string Prefix = "(function(";

    private CompiledExpression(string source, Prepared<Script> prepared, string location)
    {
        Source = source;
        Prepared = prepared;
        Location = location;
    }

    /// <summary>The expression as written.</summary>
    public string Source { get; }

    /// <summary>Where it was written (<c>file:line:col key.path</c>), for error messages.</summary>
    public string Location { get; }

    internal Prepared<Script> Prepared { get; }

    /// <summary>Parses an expression.</summary>
    /// <param name="source">The JavaScript expression.</param>
    /// <param name="location">Where it was written, quoted in errors.</param>
    /// <exception cref="ExpressionSyntaxException">The text is not a JavaScript expression.</exception>
    public static CompiledExpression Compile(string source, string location = "")
    {
        ArgumentNullException.ThrowIfNull(source);
        var wrapped = $"{Prefix}{string.Join(", ", ExpressionScope.Names)}) {{ 'use strict'; return (\n{source}\n); }})";
        try
        {
            var prepared = Jint.Engine.PrepareScript(wrapped);
            if (!IsSingleExpression(prepared.Program))
            {
                // The text closed the wrapper's parenthesis and added statements of its own: `1); while (true) {} (1`.
                throw new ExpressionSyntaxException(source, 1, 1, "an expression cannot contain statements (use an arrow function for more than one)");
            }

            return new CompiledExpression(source, prepared, location);
        }
        catch (ScriptPreparationException e) when (e.InnerException is ParseErrorException pe)
        {
            var line = Math.Max(1, pe.LineNumber - 1);
            throw new ExpressionSyntaxException(source, line, pe.Column + 1, pe.Description ?? pe.Message);
        }
        catch (ScriptPreparationException e)
        {
            throw new ExpressionSyntaxException(source, 1, 1, e.Message);
        }
    }

    /// <inheritdoc />
    public override string ToString() => Source;

    private static bool IsSingleExpression(Script? program)
        => program is { Body.Count: 1 } && program.Body[0] is ExpressionStatement { Expression: FunctionExpression { Body.Body.Count: 2 } fn }
            && fn.Body.Body[1] is ReturnStatement { Argument: not null };
}

/// <summary>An expression is not valid JavaScript.</summary>
public sealed class ExpressionSyntaxException : OrdoException
{
    /// <summary>Creates the error.</summary>
    public ExpressionSyntaxException(string source, int line, int column, string description)
        : base($"invalid expression '{source}': {description} ({Where(source, line, column)})")
    {
        Line = line;
        Column = column;
        Description = description;
    }

    /// <summary>Where in the expression: past its end, a column of a one-line expression, or a line and column.</summary>
    private static string Where(string source, int line, int column)
    {
        var lines = source.Split('\n');
        if (line > lines.Length || (line == lines.Length && column > lines[^1].Length)) return "at the end of the expression";
        return lines.Length == 1 ? $"at column {column}" : $"at line {line}, column {column} of the expression";
    }

    /// <summary>1-based line inside the expression.</summary>
    public int Line { get; }
    /// <summary>1-based column inside the expression.</summary>
    public int Column { get; }
    /// <summary>What the parser reported.</summary>
    public string Description { get; }
}

/// <summary>An expression failed while it was evaluated (a TypeError, a limit, a wrong result type).</summary>
public sealed class ExpressionEvaluationException : OrdoException
{
    /// <summary>Creates the error.</summary>
    public ExpressionEvaluationException(CompiledExpression expression, string message, Exception? inner = null)
        : base($"{(string.IsNullOrEmpty(expression?.Location) ? "" : expression.Location + ": ")}expression '{expression?.Source}' failed: {message}", inner)
        => Expression = expression!;

    /// <summary>The expression.</summary>
    public CompiledExpression Expression { get; }

    /// <summary>The message, prefixed with <paramref name="what"/> (the key it was written under) when the expression has no location of its own.</summary>
    public string In(string what) => string.IsNullOrEmpty(Expression?.Location) ? $"{what}: {Message}" : Message;
}
