using System.CommandLine;
using Ordo.Configuration;

namespace Ordo.Cli;

/// <summary>The global options, the console and the stop signal of one <c>ordo</c> invocation.</summary>
internal sealed class CliContext
{
    public required TextWriter Out { get; init; }
    public required TextWriter Err { get; init; }
    public required bool Terminal { get; init; }
    public required CancellationToken Stop { get; init; }
    public bool Json { get; init; }
    public bool Quiet { get; init; }
    public string? As { get; init; }
    public string? Db { get; init; }
    public string? Postgres { get; init; }
    public string? PostgresEnv { get; init; }
    public string? Config { get; init; }

    /// <summary>The acting identity: <c>--as</c>, else the OS user.</summary>
    /// <exception cref="CliInputException"><c>--as</c> was given without a name.</exception>
    public string Identity => As is null ? Environment.UserName
        : string.IsNullOrWhiteSpace(As) ? throw new CliInputException("--as needs an identity (a name such as bob); leave it out to act as the OS user")
        : As.Trim();

    /// <summary>Human output is shown (not <c>--json</c>, not <c>--quiet</c>).</summary>
    public bool Human => !Json && !Quiet;

    /// <summary>The SQLite file: <c>--db</c>, else <c>ORDO_DB</c>, else the config's <c>storage.sqlite</c>, else <c>ordo.db</c> here.</summary>
    public string ResolveDbPath(ProjectDefinition? project)
    {
        if (!string.IsNullOrWhiteSpace(Db)) return Path.GetFullPath(Db);
        if (Environment.GetEnvironmentVariable("ORDO_DB") is { Length: > 0 } env) return Path.GetFullPath(env);
        if (project?.Storage?.Sqlite is { } configured) return configured;
        return Path.GetFullPath("ordo.db");
    }

    /// <summary>The audit key file: <c>ORDO_AUDIT_KEY</c>, else the config's <c>audit.key</c>, else <see cref="Audit.AuditKey.DefaultPath"/>.</summary>
    public static string ResolveAuditKeyPath(ProjectDefinition? project)
    {
        if (Environment.GetEnvironmentVariable(Audit.AuditKey.EnvironmentVariable) is { Length: > 0 } env) return Path.GetFullPath(env);
        if (project?.Audit?.Key is { } configured) return configured;
        return Audit.AuditKey.DefaultPath;
    }

    /// <summary>Whether the store is named by <c>--db</c>, <c>--postgres</c>, <c>ORDO_DB</c> or <c>ORDO_POSTGRES</c> (so no project file is needed to find it).</summary>
    public bool DatabaseNamed => !string.IsNullOrWhiteSpace(Db) || !string.IsNullOrWhiteSpace(Postgres) || !string.IsNullOrWhiteSpace(PostgresEnv)
        || Environment.GetEnvironmentVariable("ORDO_DB") is { Length: > 0 };

    /// <summary>
    /// The PostgreSQL connection string, or null for the SQLite store: <c>--postgres</c>; else none when <c>--db</c> is given;
    /// else <c>ORDO_POSTGRES</c>; else none when <c>ORDO_DB</c> is set; else the config's <c>storage.postgres</c>.
    /// </summary>
    /// <exception cref="CliInputException">Both <c>--db</c> and <c>--postgres</c> are given.</exception>
    public string? ResolvePostgres(ProjectDefinition? project)
    {
        if (!string.IsNullOrWhiteSpace(Postgres))
        {
            return string.IsNullOrWhiteSpace(Db) ? Postgres.Trim() : throw new CliInputException("--db and --postgres name two different stores: give one of them");
        }

        if (!string.IsNullOrWhiteSpace(Db)) return null;
        if (!string.IsNullOrWhiteSpace(PostgresEnv)) return PostgresEnv.Trim();
        if (Environment.GetEnvironmentVariable("ORDO_DB") is { Length: > 0 }) return null;
        return project?.Storage?.Postgres;
    }

    /// <summary>Where the connection string <see cref="ResolvePostgres"/> returns comes from, for messages: <c>--postgres</c>, <c>ORDO_POSTGRES</c> or <c>storage.postgres</c>.</summary>
    public string PostgresSource => !string.IsNullOrWhiteSpace(Postgres) ? "--postgres"
        : string.IsNullOrWhiteSpace(Db) && !string.IsNullOrWhiteSpace(PostgresEnv) ? "ORDO_POSTGRES"
        : "storage.postgres";

    public static CliContext From(ParseResult parse, GlobalOptions g, TextWriter output, TextWriter error, bool terminal, CancellationToken stop) => new()
    {
        Out = output,
        Err = error,
        Terminal = terminal,
        Stop = stop,
        Json = parse.GetValue(g.Json),
        Quiet = parse.GetValue(g.Quiet),
        As = parse.GetValue(g.As),
        Db = parse.GetValue(g.Db),
        Postgres = parse.GetValue(g.Postgres),
        PostgresEnv = Environment.GetEnvironmentVariable("ORDO_POSTGRES"),
        Config = parse.GetValue(g.Config),
    };
}

/// <summary>The options every command accepts.</summary>
internal sealed class GlobalOptions
{
    public Option<string?> As { get; } = new("--as") { Description = "The acting identity: the submitter for run/submit, the approver for approve. Default: the OS user.", Recursive = true };
    public Option<string?> Db { get; } = new("--db") { Description = "The SQLite database file. Default: ordo.db in the working directory (env ORDO_DB).", Recursive = true };
    public Option<string?> Postgres { get; } = new("--postgres") { Description = "A PostgreSQL connection string (Host=...;Database=...): the store shared by workers and servers on many machines (env ORDO_POSTGRES).", Recursive = true };
    public Option<string?> Config { get; } = new("--config") { Description = "The project configuration file. Default: ordo.yaml beside the workflow.", Recursive = true };
    public Option<bool> Json { get; } = new("--json") { Description = "Print JSON instead of text.", Recursive = true };
    public Option<bool> Quiet { get; } = new("--quiet", "-q") { Description = "Print nothing but errors.", Recursive = true };

    public void AddTo(Command root)
    {
        root.Add(As);
        root.Add(Db);
        root.Add(Postgres);
        root.Add(Config);
        root.Add(Json);
        root.Add(Quiet);
    }
}
