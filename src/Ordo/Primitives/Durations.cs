using System.Globalization;

namespace Ordo;

/// <summary>Parses and formats the duration literals of Ordo files: <c>250ms</c>, <c>30s</c>, <c>5m</c>, <c>2h</c>, <c>1d</c>.</summary>
public static class Durations
{
    /// <summary>Tries to parse a duration literal. A bare number is read as seconds.</summary>
    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        var s = text.Trim();
        var (number, unit) = Split(s);
        if (!double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var n) || n < 0 || double.IsInfinity(n))
        {
            return false;
        }

        double ms;
        switch (unit)
        {
            case "ms": ms = n; break;
            case "s": case "": ms = n * 1000; break;
            case "m": ms = n * 60_000; break;
            case "h": ms = n * 3_600_000; break;
            case "d": ms = n * 86_400_000; break;
            default: return false;
        }

        if (ms > TimeSpan.MaxValue.TotalMilliseconds / 2)
        {
            return false;
        }

        value = TimeSpan.FromMilliseconds(ms);
        return true;
    }

    /// <summary>Formats a duration in the shortest exact literal form (<c>1500ms</c>, <c>30s</c>, <c>5m</c>).</summary>
    public static string Format(TimeSpan value)
    {
        var ms = value.TotalMilliseconds;
        if (ms % 86_400_000 == 0 && ms > 0) return $"{ms / 86_400_000}d";
        if (ms % 3_600_000 == 0 && ms > 0) return $"{ms / 3_600_000}h";
        if (ms % 60_000 == 0 && ms > 0) return $"{ms / 60_000}m";
        if (ms % 1000 == 0) return $"{ms / 1000}s";
        return $"{ms.ToString(CultureInfo.InvariantCulture)}ms";
    }

    /// <summary>
    /// Formats a span of time for people, rounded up to the unit worth saying: <c>250 ms</c>, <c>30 s</c>, <c>2 min 5 s</c>,
    /// <c>1 h 5 min</c>, <c>2 d 3 h</c> (29.9276 s is <c>30 s</c>). Not a literal of Ordo files: see <see cref="Format"/> for those.
    /// </summary>
    public static string Readable(TimeSpan value)
    {
        if (value <= TimeSpan.Zero) return "0 s";
        if (value < TimeSpan.FromSeconds(1)) return Invariant($"{Math.Ceiling(value.TotalMilliseconds)} ms");
        var seconds = (long)Math.Ceiling(value.TotalSeconds);
        if (seconds < 60) return Invariant($"{seconds} s");
        if (seconds < 3600) return Two(seconds / 60, "min", seconds % 60, "s");
        var minutes = (long)Math.Ceiling(value.TotalMinutes);
        if (minutes < 24 * 60) return Two(minutes / 60, "h", minutes % 60, "min");
        var hours = (long)Math.Ceiling(value.TotalHours);
        return Two(hours / 24, "d", hours % 24, "h");
    }

    private static string Two(long first, string firstUnit, long second, string secondUnit)
        => second == 0 ? Invariant($"{first} {firstUnit}") : Invariant($"{first} {firstUnit} {second} {secondUnit}");

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    private static (string Number, string Unit) Split(string s)
    {
        var i = s.Length;
        while (i > 0 && char.IsLetter(s[i - 1]))
        {
            i--;
        }

        return (s[..i].Trim(), s[i..].ToLowerInvariant());
    }
}
