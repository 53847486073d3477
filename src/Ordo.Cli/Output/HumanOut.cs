using System.Globalization;
using Ordo.State;
using Ordo.Workflows;

namespace Ordo.Cli.Output;

/// <summary>Text output for people.</summary>
internal static class HumanOut
{
    public static string Ms(double ms) => ms >= 1000 ? (ms / 1000).ToString("0.00", CultureInfo.InvariantCulture) + " s" : ms.ToString("0.0", CultureInfo.InvariantCulture) + " ms";

    public static string Money(decimal cost) => "$" + cost.ToString("0.0000", CultureInfo.InvariantCulture);

    public static string Count(long n) => n.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>
    /// The <c> --db PATH</c> to add to a suggested command so that it opens <paramref name="databasePath"/>: empty for
    /// the default <c>ordo.db</c> here, a relative path below the working directory, the full path otherwise (quoted for a shell when needed).
    /// </summary>
    public static string DbOption(string databasePath)
    {
        // A PostgreSQL store is named by --postgres, ORDO_POSTGRES or the config; its connection string (and password) is never repeated.
        if (IsPostgres(databasePath)) return "";
        var relative = Path.GetRelativePath(Directory.GetCurrentDirectory(), databasePath);
        if (relative == "ordo.db" && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("ORDO_DB")))
        {
            return "";
        }

        var shown = Path.IsPathRooted(relative) || relative == ".." || relative.StartsWith(".." + Path.DirectorySeparatorChar, StringComparison.Ordinal) ? databasePath : relative;
        return " --db " + ShellQuote(shown);
    }

    /// <summary>
    /// How a job goes on after a decision: on PostgreSQL its workers (<c>ordo worker</c>, <c>ordo serve</c>) take its work
    /// by themselves; on SQLite, as there, or with <c>ordo resume JOB_ID</c>.
    /// </summary>
    public static string HowItContinues(JobId job, string databasePath)
        => IsPostgres(databasePath)
            ? $"the workers on this PostgreSQL store continue job {job} by themselves (start one with ordo worker if none runs)"
            : $"continue it with: ordo resume {job}{DbOption(databasePath)}";

    private static bool IsPostgres(string databasePath) => databasePath.StartsWith("postgres://", StringComparison.Ordinal);

    private static string ShellQuote(string text)
        => text.Length > 0 && text.All(c => char.IsAsciiLetterOrDigit(c) || c is '/' or '.' or '_' or '-' or '+' or ':' or ',' or '@' or '%' or '=')
            ? text
            : "'" + text.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>Where a job that went as far as it can waits: the approvals pending in the jobs under it, and how to decide them.</summary>
    public static void WriteWaitingIn(TextWriter o, JobState root, IReadOnlyList<JobState> waitingIn, string databasePath)
    {
        if (waitingIn.Count == 0) return;
        var dbArg = DbOption(databasePath);
        o.WriteLine();
        o.WriteLine($"  waiting for approval in {(waitingIn.Count == 1 ? "a job" : $"{waitingIn.Count} jobs")} under this one:");
        foreach (var job in waitingIn)
        {
            foreach (var a in job.Approvals.Values.Where(a => a.IsPending).OrderBy(a => a.RequestedAt))
            {
                o.WriteLine($"  {job.JobId} ({job.Workflow}@{job.Version})  {a.Id}  {a.Kind} needs {a.Count} × {a.Role}{(a.Reason is null ? "" : $" — {OneLine(a.Reason)}")}");
            }
        }

        o.WriteLine($"    decide: ordo approve JOB_ID --approval ID --as IDENTITY [--deny] [--reason TEXT]{dbArg}; then {HowItContinues(root.JobId, databasePath)}");
    }

    /// <summary>
    /// A text on one line, safe for a terminal: line breaks and runs of white space become one space (messages from
    /// outside, such as a provider's error body, may span lines), and other control characters (an escape sequence in
    /// an identity or a tool's answer) are shown as <c>\u001B</c> instead of acting on the terminal.
    /// </summary>
    public static string OneLine(string text)
    {
        if (!text.Any(char.IsControl)) return text;
        var spaced = string.Join(' ', text.Split((char[])['\n', '\r', '\t', ' '], StringSplitOptions.RemoveEmptyEntries));
        if (!spaced.Any(char.IsControl)) return spaced;
        var b = new System.Text.StringBuilder(spaced.Length + 16);
        foreach (var c in spaced)
        {
            if (char.IsControl(c)) b.Append(System.Globalization.CultureInfo.InvariantCulture, $"\\u{(int)c:X4}");
            else b.Append(c);
        }

        return b.ToString();
    }

    /// <summary>The job summary of <c>run</c>, <c>resume</c> and <c>show</c>; <paramref name="related"/> (the job tree: parent, children) is printed under the first line.</summary>
    public static void WriteSummary(TextWriter o, JobState state, WorkflowDefinition? workflow, string databasePath, IReadOnlyList<string>? related = null)
    {
        var elapsed = (state.UpdatedAt - state.CreatedAt).TotalMilliseconds;
        o.WriteLine($"job {state.JobId}  {state.Workflow}@{state.Version}  tenant {state.Tenant}  {state.Status.ToWire()}{(state.Status.IsTerminal() ? $" after {Ms(elapsed)}" : "")}{(state.DryRun ? "  (dry run: side effects recorded, not executed)" : "")}");
        if (state.Reason is { } reason)
        {
            o.WriteLine($"  reason: {OneLine(reason)}");
        }

        foreach (var line in related ?? [])
        {
            o.WriteLine(line);
        }

        // Steps as a tree: a coordinating step's branches and items follow it, indented, each step named with its scope.
        var rows = JobView.StepRows(state, workflow).Where(r => r.BranchOf is null).ToList();
        if (rows.Count > 0)
        {
            var names = rows.Select(r => new string(' ', 2 * r.Depth) + r.Step.Id + (r.Step.Scope is { } sc ? $" [{sc}]" : "")).ToList();
            var width = Math.Max(4, names.Max(n => n.Length));
            o.WriteLine();
            o.WriteLine($"  {"step".PadRight(width)}  {"status",-10}  {"attempts",8}  {"duration",10}");
            for (var i = 0; i < rows.Count; i++)
            {
                var s = rows[i].Step;
                var visits = s.Visit > 1 ? $"  ({s.Visit} visits)" : "";
                o.WriteLine($"  {names[i].PadRight(width)}  {rows[i].Status,-10}  {s.Attempts,8}  {Ms(s.DurationMs),10}{visits}");
                if (s.Status == "failed" && s.Error is { } err)
                {
                    o.WriteLine($"  {"".PadRight(width)}  error: {OneLine(err)}");
                }

                foreach (var p in rows[i].Patterns)
                {
                    var visit = rows[i].Patterns.Count > 1 ? $"visit {p.Visit}: " : "";
                    o.WriteLine($"  {"".PadRight(2 * rows[i].Depth)}  ↳ {visit}{JobView.Summary(p)}");
                }
            }
        }

        if (state.Artifacts.Count > 0)
        {
            var width = Math.Max(8, state.Artifacts.Keys.Max(k => k.Length));
            o.WriteLine();
            o.WriteLine("  artifacts");
            foreach (var a in state.Artifacts.Values.OrderBy(a => a.Name, StringComparer.Ordinal))
            {
                o.WriteLine($"  {a.Name.PadRight(width)}  {a.Latest.Status,-11}  {JobView.Value(a.Latest.Value)}");
                if (a.Latest.Reason is { } why)
                {
                    o.WriteLine($"  {"".PadRight(width)}  {OneLine(why)}");
                }
            }
        }

        if (state.Approvals.Count > 0)
        {
            o.WriteLine();
            o.WriteLine("  approvals");
            foreach (var a in state.Approvals.Values.OrderBy(a => a.RequestedAt))
            {
                var who = a.Approvers.Any() ? $" approved by {string.Join(", ", a.Approvers)}" : "";
                o.WriteLine($"  {a.Id}  {a.Status}  {a.Kind} needs {a.Count} × {a.Role}{who}{(a.Reason is null ? "" : $" — {OneLine(a.Reason)}")}");
            }

            if (state.Approvals.Values.Any(a => a.IsPending))
            {
                o.WriteLine($"    decide: ordo approve {state.JobId} --approval ID --as IDENTITY [--deny] [--reason TEXT]{DbOption(databasePath)}; then {HowItContinues(state.JobId, databasePath)}");
            }
        }

        o.WriteLine();
        o.WriteLine($"  usage: {Count(state.Usage.Tokens)} tokens · {Money(state.Usage.Cost)} · {Count(state.Usage.ToolCalls)} tool calls");
        var dbArg = DbOption(databasePath);
        o.WriteLine($"  audit trail: {state.Seq} hash-chained events in {databasePath}");
        o.WriteLine($"    ordo events {state.JobId}{dbArg}        (the log)");
        o.WriteLine($"    ordo audit verify {state.JobId}{dbArg}  (check the chain)");
    }
}
