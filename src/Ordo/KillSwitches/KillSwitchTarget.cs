using System.Text.RegularExpressions;

namespace Ordo.KillSwitches;

/// <summary>What a kill switch disables: <c>tool:web.*</c>, <c>agent:extractor</c>, <c>workflow:x</c>, <c>step:auction</c>.</summary>
/// <param name="Kind"><c>tool</c>, <c>agent</c>, <c>workflow</c> or <c>step</c> (a step kind).</param>
/// <param name="Pattern">A name, where <c>*</c> matches any characters.</param>
public sealed record KillSwitchTarget(string Kind, string Pattern)
{
    private static readonly string[] Kinds = ["tool", "agent", "workflow", "step"];
    private Regex? _regex;

    /// <summary>Parses <c>kind:pattern</c>.</summary>
    public static bool TryParse(string? text, out KillSwitchTarget target)
    {
        target = null!;
        if (string.IsNullOrWhiteSpace(text)) return false;
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0 || colon == text.Length - 1) return false;
        var kind = text[..colon].Trim();
        var pattern = text[(colon + 1)..].Trim();
        if (!Kinds.Contains(kind, StringComparer.Ordinal) || pattern.Length == 0 || pattern.Any(char.IsWhiteSpace)) return false;
        target = new KillSwitchTarget(kind, pattern);
        return true;
    }

    /// <summary>Whether the switch covers <paramref name="name"/> of kind <paramref name="kind"/>.</summary>
    public bool Matches(string kind, string name)
    {
        if (!string.Equals(kind, Kind, StringComparison.Ordinal)) return false;
        if (!Pattern.Contains('*', StringComparison.Ordinal)) return string.Equals(Pattern, name, StringComparison.Ordinal);
        _regex ??= new Regex("^" + Regex.Escape(Pattern).Replace("\\*", ".*", StringComparison.Ordinal) + "$", RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100));
        return _regex.IsMatch(name);
    }

    /// <inheritdoc />
    public override string ToString() => $"{Kind}:{Pattern}";
}

/// <summary>A kill switch as stored: its target, why, by whom and since when, and the tenant it stops.</summary>
/// <param name="Target">What it stops, as <see cref="KillSwitchTarget"/> writes it.</param>
/// <param name="Reason">Why, or null.</param>
/// <param name="SetBy">The identity that set it.</param>
/// <param name="SetAt">When.</param>
/// <param name="Tenant">The one tenant whose jobs it stops (set through the API by that tenant's operator); null stops every tenant's (<c>ordo kill</c>, <c>kill_switches:</c> of the config).</param>
public sealed record KillSwitch(string Target, string? Reason, string SetBy, DateTimeOffset SetAt, string? Tenant = null)
{
    /// <summary>Whether it stops the jobs of <paramref name="tenant"/>.</summary>
    public bool Covers(string tenant) => Tenant is null || string.Equals(Tenant, tenant, StringComparison.Ordinal);
}
