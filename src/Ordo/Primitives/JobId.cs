namespace Ordo;

/// <summary>Identifies one job: one run of one version of a workflow for one tenant.</summary>
/// <param name="Value">The identifier text: 32 lowercase hex digits, time-ordered.</param>
public readonly record struct JobId(string Value)
{
    /// <summary>Creates a new time-ordered identifier (UUID version 7) for a job created at <paramref name="now"/>.</summary>
    public static JobId New(DateTimeOffset now) => new(Guid.CreateVersion7(now).ToString("N"));

    /// <summary>Parses a user-supplied job id, accepting the canonical form and any unambiguous case.</summary>
    /// <exception cref="FormatException">The text is empty or contains characters other than hex digits and dashes.</exception>
    public static JobId Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var trimmed = text.Trim().Replace("-", "", StringComparison.Ordinal).ToLowerInvariant();
        if (trimmed.Length == 0 || trimmed.Any(c => !Uri.IsHexDigit(c)))
        {
            throw new FormatException($"'{text}' is not a job id (expected 32 hex digits).");
        }

        return new JobId(trimmed);
    }

    /// <inheritdoc />
    public override string ToString() => Value;
}
