using System.CommandLine;
using System.Globalization;

namespace Ordo.Cli.Commands;

/// <summary>Options that several commands share, parsed with messages that say what is expected.</summary>
internal static class CommonOptions
{
    /// <summary><c>--workers N</c> (or another name): steps run at once, a whole number of at least 1.</summary>
    public static Option<int?> Workers(string name = "--workers", string description = "Steps run at once. Default: the number of cores.") => new(name)
    {
        Description = description,
        CustomParser = result =>
        {
            var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
            if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < 1)
            {
                result.AddError($"{name}: '{text}' is not a valid number (a whole number, at least 1)");
                return null;
            }

            return n;
        },
    };

    /// <summary><c>--dry-run</c> of a submission: the job runs in dry run wherever it runs.</summary>
    public static Option<bool> DryRunJob() => new("--dry-run")
    {
        Description = "Submit the job in dry run: tool calls with side effects (effect: write or irreversible) are recorded, not executed, "
            + "by whichever process runs it (a later ordo resume too); read tools run normally.",
    };
}
