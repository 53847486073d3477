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
        var form = identity.Normalize(NormalizationForm.FormKC).Trim().ToLower(CultureInfo.InvariantCulture);
        if (form.Length == 0) throw new OrdoRefusedException("an identity cannot be empty");
        if (form.Length > MaxLength) throw new OrdoRefusedException($"an identity is at most {MaxLength} characters");
        if (form.Any(char.IsControl)) throw new OrdoRefusedException("an identity cannot hold control characters (line breaks, escapes)");
        return form;
    }

    /// <summary>Whether two identities name the same person.</summary>
    public static bool Same(string a, string b) => string.Equals(Fold(a), Fold(b), StringComparison.Ordinal);

    /// <summary>The comparison form without the checks of <see cref="Normalize"/> (for identities already stored).</summary>
    internal static string Fold(string identity) => identity.Normalize(NormalizationForm.FormKC).Trim().ToLower(CultureInfo.InvariantCulture);
}
