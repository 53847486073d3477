using System.Globalization;
using System.Text;

namespace Ordo;

/// <summary>
/// People (submitters, approvers, the holders of roles) are named by identities compared in one form: Unicode NFKC,
/// trimmed, and case-folded. <c>Ann</c>, <c>ann </c> and <c>ＡＮＮ</c> are one person, for the two-person rule as for roles.
/// </summary>
public static class Identities
{
    /// <summary>The longest identity, in characters.</summary>
    public const int MaxLength = 256;

    /// <summary>The form an identity is stored and compared in.</summary>
    /// <exception cref="OrdoRefusedException">It is empty, too long, or holds control characters.</exception>
    public static string Normalize(string identity)
    {
        ArgumentNullException.ThrowIfNull(identity);
        if (!NormalizationWorks && !Ascii.IsValid(identity))
        {
            // Without Unicode data (a process in invariant globalization mode) "ａｌｉｃｅ" could not be told from alice.
            throw new OrdoRefusedException("an identity with characters outside ASCII cannot be compared safely in this process (it runs without Unicode normalization data: invariant globalization mode)");
        }

        var form = Fold(identity);
        if (form.Length == 0) throw new OrdoRefusedException("an identity cannot be empty");
        if (form.Length > MaxLength) throw new OrdoRefusedException($"an identity is at most {MaxLength} characters");
        if (form.Any(char.IsControl)) throw new OrdoRefusedException("an identity cannot hold control characters (line breaks, escapes)");
        return form;
    }

    /// <summary>Whether two identities name the same person.</summary>
    public static bool Same(string a, string b) => string.Equals(Fold(a), Fold(b), StringComparison.Ordinal);

    /// <summary>The comparison form without the checks of <see cref="Normalize"/> (for identities already stored).</summary>
    /// <remarks>
    /// Invisible characters are removed first — format characters (zero-width space and joiners, soft hyphen,
    /// direction marks, tags) and variation selectors — so that <c>alice\u200b</c> and <c>ali\u00adce</c> are alice.
    /// </remarks>
    internal static string Fold(string identity)
    {
        var folded = Visible(Visible(identity).Normalize(NormalizationForm.FormKC));
        return folded.Trim().ToLower(CultureInfo.InvariantCulture);
    }

    private static string Visible(string text)
    {
        if (!text.EnumerateRunes().Any(IsInvisible)) return text;
        var sb = new StringBuilder(text.Length);
        foreach (var r in text.EnumerateRunes())
        {
            if (!IsInvisible(r)) sb.Append(r.ToString());
        }

        return sb.ToString();
    }

    /// <summary>Format characters (Unicode Cf: zero-width ones, direction marks, tags) and variation selectors.</summary>
    private static bool IsInvisible(Rune r)
        => Rune.GetUnicodeCategory(r) == UnicodeCategory.Format || r.Value is (>= 0xFE00 and <= 0xFE0F) or (>= 0xE0100 and <= 0xE01EF);

    /// <summary>Whether this process can normalize Unicode (false in invariant globalization mode).</summary>
    private static readonly bool NormalizationWorks = "\uFF41".Normalize(NormalizationForm.FormKC) == "a";
}
