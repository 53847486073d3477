using System.Globalization;

namespace Ordo.Stats;

/// <summary>Reads the <c>since</c> of <c>ordo stats</c> and <c>GET /v1/stats</c>: a duration back from now (<c>24h</c>, <c>7d</c>) or an instant.</summary>
public static class StatsWindow
{
    /// <summary>The default window: the last 24 hours.</summary>
    public static readonly TimeSpan Default = TimeSpan.FromHours(24);

    /// <summary>The start of the window; false when the text is neither a duration nor an ISO 8601 instant.</summary>
    public static bool TryParse(string? text, DateTimeOffset now, out DateTimeOffset since)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            since = now - Default;
            return true;
        }

        if (Durations.TryParse(text.Trim(), out var back) && back >= TimeSpan.Zero)
        {
            since = now - back;
            return true;
        }

        return DateTimeOffset.TryParse(text.Trim(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out since);
    }
}
