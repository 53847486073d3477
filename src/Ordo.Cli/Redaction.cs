using System.Text.RegularExpressions;

namespace Ordo.Cli;

/// <summary>
/// Masks secrets in what <c>ordo</c> repeats of its command line or of a connection string (a crash log, an error
/// message): the password and password file of a PostgreSQL connection string, the password of a URL, the value of an
/// option named like a secret (<c>--api-key</c>, <c>--token</c>), an Ordo API key, a bearer token. Each value becomes
/// <see cref="Mask"/>; everything else (host, port, database, user) stays, so the text still says where it was going.
/// </summary>
internal static partial class Redaction
{
    /// <summary>What a secret is replaced with.</summary>
    public const string Mask = "***";

    /// <summary>The options whose value is a connection string: only its secrets are masked.</summary>
    private static readonly string[] ConnectionOptions = ["--postgres"];

    /// <summary>Masks the secrets in a text: connection strings, URLs, API keys and bearer tokens within it.</summary>
    public static string Text(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!MayHoldSecret(text)) return text;
        text = ConnectionSecret().Replace(text, m => m.Groups["key"].Value + Mask);
        text = UrlPassword().Replace(text, m => m.Groups["head"].Value + Mask + "@");
        text = ApiKey().Replace(text, "ordo_" + Mask);
        return Bearer().Replace(text, m => m.Groups["head"].Value + Mask);
    }

    /// <summary>
    /// Whether <see cref="Text"/> could find a secret in <paramref name="text"/> (a <c>=</c>, a <c>://</c>, an <c>ordo_</c>,
    /// a <c>bearer</c>): most texts, such as every warning a worker logs, hold none, and are passed on without a regular
    /// expression being run, or even loaded, on a worker's path.
    /// </summary>
    public static bool MayHoldSecret(string text)
        => text.Contains('=', StringComparison.Ordinal) || text.Contains("://", StringComparison.Ordinal) || text.Contains("ordo_", StringComparison.Ordinal)
            || text.Contains("bearer", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The command line with its secrets masked: the value after an option named like a secret (<c>--api-key X</c>,
    /// <c>--token=X</c>) entirely; in every other argument (a connection string after <c>--postgres</c>, anything else)
    /// the secrets <see cref="Text"/> finds.
    /// </summary>
    public static IReadOnlyList<string> Args(IEnumerable<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var masked = new List<string>();
        var secretNext = false;
        foreach (var arg in args)
        {
            if (secretNext)
            {
                masked.Add(Mask);
                secretNext = false;
                continue;
            }

            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            var name = arg.StartsWith('-') ? (eq < 0 ? arg : arg[..eq]) : null;
            if (name is not null && IsSecretOption(name))
            {
                if (eq < 0) secretNext = true;
                masked.Add(eq < 0 ? arg : name + "=" + Mask);
                continue;
            }

            masked.Add(Text(arg));
        }

        return masked;
    }

    /// <summary>The command line as one line, its secrets masked, each argument quoted as a shell would need it (a connection string's ';', a space).</summary>
    public static string CommandLine(IEnumerable<string> args)
        => string.Join(' ', Args(args).Select(a => a.Length > 0 && a.All(c => char.IsAsciiLetterOrDigit(c) || c is '/' or '.' or '_' or '-' or '+' or ':' or ',' or '@' or '%' or '=' or '*')
            ? a
            : "'" + a.Replace("'", "'\\''", StringComparison.Ordinal) + "'"));

    /// <summary>Whether an option's value is a secret as a whole (its name says key, token, secret, password or credential).</summary>
    public static bool IsSecretOption(string name)
        => !ConnectionOptions.Contains(name, StringComparer.Ordinal) && SecretOptionName().IsMatch(name);

    // A key of an Npgsql connection string that holds a secret (Password, its synonyms PWD and PSW, SSL Password,
    // Passfile), then its value: quoted (a doubled quote escapes one) or up to the next ';' or the line's end.
    [GeneratedRegex("""(?<key>\b(?:ssl\s*)?(?:password|passwd|pwd|psw|passfile)\s*=\s*)(?:"(?:[^"]|"")*"|'(?:[^']|'')*'|[^;\r\n]*)""", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex ConnectionSecret();

    // scheme://user:PASSWORD@host
    [GeneratedRegex("""(?<head>\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@""", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex UrlPassword();

    // An Ordo API key: ordo_ and 43 URL-safe characters.
    [GeneratedRegex("""\bordo_[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])""", RegexOptions.CultureInvariant)]
    private static partial Regex ApiKey();

    [GeneratedRegex("""(?<head>\bBearer\s+)[^\s;,'"]+""", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex Bearer();

    [GeneratedRegex("""^--?[a-z0-9-]*(?:key|token|secret|password|passwd|pwd|credential)[a-z0-9-]*$""", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex SecretOptionName();
}
