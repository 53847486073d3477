namespace Ordo.Expressions;

/// <summary>One piece of a string template: literal text or an embedded <c>${ expression }</c>.</summary>
/// <param name="Text">The literal text, or the expression source.</param>
/// <param name="IsExpression">Whether <see cref="Text"/> is an expression.</param>
/// <param name="Offset">Where the piece starts in the template (0-based).</param>
internal readonly record struct TemplateSegment(string Text, bool IsExpression, int Offset);

/// <summary>Splits strings into literal text and <c>${ … }</c> expressions, matching braces and skipping JavaScript strings.</summary>
internal static class TemplateParser
{
    /// <summary>Whether the text contains a <c>${</c> opener at all.</summary>
    public static bool HasExpression(string text) => text.Contains("${", StringComparison.Ordinal);

    /// <summary>Splits a template; returns an error message when an expression is not closed.</summary>
    public static IReadOnlyList<TemplateSegment> Parse(string text, out string? error) => Parse(text, out error, out _);

    /// <summary>Splits a template; on error, <paramref name="errorOffset"/> is where the faulty <c>${</c> starts (0-based).</summary>
    public static IReadOnlyList<TemplateSegment> Parse(string text, out string? error, out int errorOffset)
    {
        error = null;
        errorOffset = -1;
        var segments = new List<TemplateSegment>();
        var i = 0;
        var literalStart = 0;
        while (i < text.Length)
        {
            if (text[i] == '$' && i + 1 < text.Length && text[i + 1] == '{')
            {
                if (i > literalStart)
                {
                    segments.Add(new TemplateSegment(text[literalStart..i], false, literalStart));
                }

                var end = FindClose(text, i + 2);
                if (end < 0)
                {
                    error = $"'${{' at position {i + 1} is never closed with '}}'";
                    errorOffset = i;
                    return segments;
                }

                var expr = text[(i + 2)..end];
                if (expr.Trim().Length == 0)
                {
                    error = $"empty expression '${{}}' at position {i + 1}";
                    errorOffset = i;
                    return segments;
                }

                segments.Add(new TemplateSegment(expr, true, i + 2));
                i = end + 1;
                literalStart = i;
                continue;
            }

            i++;
        }

        if (literalStart < text.Length)
        {
            segments.Add(new TemplateSegment(text[literalStart..], false, literalStart));
        }

        return segments;
    }

    /// <summary>If the whole text is one <c>${ expr }</c>, returns the expression.</summary>
    public static string? Unwrap(string text)
    {
        var trimmed = text.Trim();
        if (!trimmed.StartsWith("${", StringComparison.Ordinal))
        {
            return null;
        }

        var segments = Parse(trimmed, out var error);
        return error is null && segments.Count == 1 && segments[0].IsExpression ? segments[0].Text : null;
    }

    private static int FindClose(string text, int start)
    {
        var depth = 0;
        for (var i = start; i < text.Length; i++)
        {
            var c = text[i];
            switch (c)
            {
                case '\'' or '"' or '`':
                    i = SkipString(text, i, c);
                    if (i < 0) return -1;
                    break;
                case '{':
                    depth++;
                    break;
                case '}':
                    if (depth == 0) return i;
                    depth--;
                    break;
            }
        }

        return -1;
    }

    private static int SkipString(string text, int start, char quote)
    {
        for (var i = start + 1; i < text.Length; i++)
        {
            if (text[i] == '\\')
            {
                i++;
                continue;
            }

            if (text[i] == quote)
            {
                return i;
            }
        }

        return -1;
    }
}
