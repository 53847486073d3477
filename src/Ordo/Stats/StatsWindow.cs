using System.Globalization;

namespace Ordo.Stats;

/// <summary>
/// Reads the <c>since</c> of <c>ordo stats</c> and <c>GET /v1/stats</c>: a duration back from now with its unit (<c>24h</c>,
/// <c>7d</c>, <c>30m</c>, <c>90s</c>, <c>500ms</c>) or an ISO 8601 instant. A bare number is neither: whether <c>10</c> means
/// seconds, hours or days is the reader's guess, so it is refused rather than taken as seconds.
/// </summary>
public static class StatsWindow
{
    /// <summary>The default window: the last 24 hours.</summary>
    public static readonly TimeSpan Default = TimeSpan.FromHours(24);

    /// <summary>The start of the window; false when the text is neither a duration with a unit nor an ISO 8601 instant.</summary>
    public static bool TryParse(string? text, DateTimeOffset now, out DateTimeOffset since)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            since = now - Default;
            return true;
        }

        var s = text.Trim();
        if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out _))
        {
            since = default;
            return false;
        }

        if (Durations.TryParse(s, out var back) && back >= TimeSpan.Zero)
        {
            since = now - back;
            return true;
        }

        return DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out since);
    }

    /// <summary>Why a text is not a window, naming the forms accepted (for an input error).</summary>
    public static string Problem(string? text)
    {
        var bare = text is not null && double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out _);
        return $"'{text}' is neither a duration with its unit (24h, 7d, 30m, 90s, 500ms) nor an instant (2026-11-22T00:00:00Z)"
            + (bare ? "; a bare number has no unit" : "");
    }
}
