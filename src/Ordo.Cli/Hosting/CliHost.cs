using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Ordo.Agents;
using Ordo.Configuration;
using Ordo.Engine;
using Ordo.Postgres;
using Ordo.Sqlite;
using Ordo.Storage;
using Ordo.Workflows;

namespace Ordo.Cli.Hosting;

/// <summary>Opens what a command needs: the workflow, the store and the runtime, with clear errors and no side effects on bad input.</summary>
internal sealed class CliHost : IAsyncDisposable
{
    private readonly ServiceProvider _services;

    private CliHost(IOrdoStore store, ServiceProvider services, string databasePath)
    {
        Store = store;
        _services = services;
        Runtime = services.GetRequiredService<OrdoRuntime>();
        DatabasePath = databasePath;
    }

    public IOrdoStore Store { get; }

    public OrdoRuntime Runtime { get; }

    public string DatabasePath { get; }

    public static CodeRegistry NewRegistry() => new();

    /// <summary>Loads and validates a workflow (and its config, tools, prompts, plugins). Throws <see cref="OrdoValidationException"/>.</summary>
    public static async Task<WorkflowDefinition> LoadWorkflowAsync(CliContext ctx, string path, CodeRegistry code, string? config = null)
    {
        if (!File.Exists(path))
        {
            throw new OrdoValidationException([new ValidationProblem(path, 0, 0, "", "the workflow file does not exist")]);
        }

        var secrets = new Gateway.SecretResolver();
        var options = new WorkflowLoadOptions
        {
            CodeAgentExists = code.HasAgent,
            CodeToolExists = code.HasTool,
            SecretTooShort = secrets.IsTooShort,
            ProjectLoaded = project =>
            {
                try
                {
                    code.LoadPlugins(project.Plugins);
                }
                catch (OrdoException e)
                {
                    throw new OrdoValidationException([new ValidationProblem(project.ConfigFile is null ? null : Path.GetRelativePath(Directory.GetCurrentDirectory(), project.ConfigFile), 0, 0, "plugins", e.Message)]);
                }
            },
        };
        var workflow = await WorkflowLoader.LoadFileAsync(path, config ?? ctx.Config, options, ctx.Stop).ConfigureAwait(false);
        if (OrdoRuntime.UnsupportedSteps(workflow, OrdoRuntime.BuiltInStepKinds) is { Count: > 0 } unsupported)
        {
            throw new OrdoValidationException(unsupported);
        }

        return workflow;
    }

    /// <summary>
    /// Checks what <c>ordo.yaml</c> names of the project's workflows (<see cref="ProjectChecks"/>): each release's workflow
    /// and versions, each model fault's agent, against the workflow files of the project (those <c>ordo serve</c> registers)
    /// and the workflows <paramref name="loaded"/>. Reads no file when the config names none of these. Throws <see cref="OrdoValidationException"/>.
    /// </summary>
    public static void CheckProject(CliContext ctx, ProjectDefinition? project, IEnumerable<WorkflowDefinition>? loaded = null)
    {
        if (project?.ConfigFile is null || (project.Releases.Count == 0 && !project.Faults.Models.Any(m => m.Agent is not null))) return;
        var outlines = Commands.ServeCommand.WorkflowFiles(ctx, project).Select(WorkflowOutline.Read).OfType<WorkflowOutline>()
            .Concat((loaded ?? []).SelectMany(WorkflowOutline.Of));
        ProjectChecks.ThrowIfInvalid(project, outlines);
    }

    /// <summary>Reads a job input: a JSON file, <c>-</c> for stdin, or nothing (an empty object).</summary>
    public static async Task<JobInput> ReadInputAsync(string? input, CancellationToken cancellationToken)
    {
        if (input is null)
        {
            return new JobInput(JsonElementFactory.EmptyObject, "input", null);
        }

        byte[] bytes;
        var name = input == "-" ? "stdin" : input;
        if (input == "-")
        {
            using var buffer = new MemoryStream();
            await Console.OpenStandardInput().CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
            bytes = buffer.ToArray();
        }
        else
        {
            if (!File.Exists(input))
            {
                throw new OrdoValidationException([new ValidationProblem(input, 0, 0, "", "the input file does not exist")]);
            }

            if (new FileInfo(input).Length > MaxInputBytes)
            {
                throw new OrdoValidationException([new ValidationProblem(input, 0, 0, "", $"the input is larger than {MaxInputBytes / (1024 * 1024)} MB")]);
            }

            bytes = await File.ReadAllBytesAsync(input, cancellationToken).ConfigureAwait(false);
        }

        if (bytes.Length > MaxInputBytes)
        {
            throw new OrdoValidationException([new ValidationProblem(name, 0, 0, "", $"the input is larger than {MaxInputBytes / (1024 * 1024)} MB")]);
        }

        string text;
        try
        {
            text = JsonElementFactory.DecodeUtf8(bytes);
        }
        catch (FormatException e)
        {
            throw new OrdoValidationException([new ValidationProblem(name, 0, 0, "", "the input is not JSON: " + e.Message)]);
        }

        JsonElement value;
        try
        {
            value = JsonElementFactory.Parse(text);
        }
        catch (JsonException e)
        {
            var line = (int)(e.LineNumber ?? 0);
            throw new OrdoValidationException([new ValidationProblem(name, line + 1, CharColumn(text, line, (int)(e.BytePositionInLine ?? 0)), "", "the input is not valid JSON: " + Json.Describe(e))]);
        }

        if (JsonElementFactory.FindInvalidString(value) is { } bad)
        {
            var (line, column) = bad.Contains(' ', StringComparison.Ordinal) ? (0, 0) : JsonLocator.Locate(text, bad) ?? (0, 0);
            throw new OrdoValidationException([new ValidationProblem(name, line, column, bad, "the string is not valid Unicode text (a lone surrogate such as \\ud800)")]);
        }

        if (JsonElementFactory.FindAmbiguity(value) is { } ambiguous)
        {
            var (line, column) = JsonLocator.Locate(text, ambiguous.Path) ?? (0, 0);
            throw new OrdoValidationException([new ValidationProblem(name, line, column, ambiguous.Path, ambiguous.Problem)]);
        }

        return new JobInput(value, name, text);
    }

    /// <summary>The largest job input read, in bytes.</summary>
    public const int MaxInputBytes = 16 * 1024 * 1024;

    /// <summary>Checks an input against a workflow's input schema before anything is created; each problem names the file, line and column of the offending value.</summary>
    public static void ValidateInput(WorkflowDefinition workflow, JobInput input)
    {
        if (workflow.InputSchema is { } schema && schema.Validate(input.Value) is { Count: > 0 } errors)
        {
            throw new OrdoValidationException(errors.Select(e =>
            {
                var colon = e.IndexOf(':', StringComparison.Ordinal);
                var path = e[..colon];
                var (line, column) = input.Text is { } text ? JsonLocator.Locate(text, path) ?? (0, 0) : (0, 0);
                return new ValidationProblem(input.Name, line, column, path, $"does not match the input schema of {workflow.Ref}: {e[(colon + 1)..].Trim()}");
            }).ToList());
        }
    }

    /// <summary>
    /// The project whose storage settings a command without a workflow file uses: <c>--config</c> when given; else
    /// <c>ordo.yaml</c> in the working directory — unless <c>--db</c> or <c>ORDO_DB</c> names the database, in which case it is
    /// not read at all (a job carries its own definition; an unrelated or broken ordo.yaml there must not stop it).
    /// </summary>
    public static async Task<ProjectDefinition?> StoreProjectAsync(CliContext ctx)
    {
        if (!string.IsNullOrWhiteSpace(ctx.Config))
        {
            return await WorkflowLoader.LoadProjectAsync(ctx.Config, null, ctx.Stop).ConfigureAwait(false);
        }

        if (ctx.DatabaseNamed || !File.Exists(WorkflowLoader.ConfigFileName))
        {
            return null;
        }

        try
        {
            return await WorkflowLoader.LoadProjectAsync(WorkflowLoader.ConfigFileName, null, ctx.Stop).ConfigureAwait(false);
        }
        catch (OrdoValidationException e)
        {
            throw new OrdoValidationException([.. e.Problems, new ValidationProblem(WorkflowLoader.ConfigFileName, 0, 0, "",
                "this ordo.yaml in the working directory is read for its storage settings; fix it, or name the database with --db")]);
        }
    }

    /// <summary>
    /// Opens the store and a runtime. With <paramref name="create"/> false, a missing database is an input error and no
    /// file is created; with <paramref name="readOnly"/>, the database is opened read-only (commands that only read
    /// work on a read-only file, and change nothing in it).
    /// </summary>
    public static async Task<CliHost> OpenAsync(CliContext ctx, ProjectDefinition? project, bool create, CodeRegistry? code = null, int? workers = null, IEnumerable<IJobObserver>? observers = null, bool dryRun = false, bool readOnly = false)
    {
        IOrdoStore store;
        string location;
        if (ctx.ResolvePostgres(project) is { } postgres)
        {
            store = await OpenPostgresAsync(ctx, postgres, create).ConfigureAwait(false);
            location = ((PostgresOrdoStore)store).Location;
        }
        else
        {
            location = ctx.ResolveDbPath(project);
            store = await OpenSqliteAsync(ctx, project, location, create, readOnly).ConfigureAwait(false);
        }

        return new CliHost(store, Compose(ctx, store, code, workers, observers, dryRun), location);
    }

    /// <summary>
    /// The runtime of a command, composed the way a host composes it (<c>AddOrdo</c> and the container), on the store
    /// the command opened. The container is not a host: no hosted worker starts; commands run work themselves.
    /// </summary>
    private static ServiceProvider Compose(CliContext ctx, IOrdoStore store, CodeRegistry? code, int? workers, IEnumerable<IJobObserver>? observers, bool dryRun)
    {
        var grace = ShutdownGrace();
        var lease = LeaseDuration();
        var pure = PureStepsPerCommit();
        var services = new ServiceCollection();
        services.AddLogging(b => b.ClearProviders().AddProvider(new StderrLoggerProvider(ctx)));
        services.AddSingleton(code ?? NewRegistry());
        services.AddOrdo(o =>
        {
            o.Workers = workers ?? Environment.ProcessorCount;
            o.DryRun = dryRun;
            o.ShutdownGrace = grace;
            o.LeaseDuration = lease;
            o.PureStepsPerCommit = pure;
            foreach (var observer in observers ?? []) o.Observers.Add(observer);
        }).UseStore(store).AddSqliteConnections().AddPostgresConnections();
        return services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = false, ValidateScopes = true });
    }

    /// <summary>
    /// Whether this process may write the SQLite database file the command names; true for PostgreSQL and for a file
    /// that does not exist (opening it reports that).
    /// </summary>
    public static bool MayWriteDatabase(CliContext ctx, ProjectDefinition? project)
    {
        if (ctx.ResolvePostgres(project) is not null) return true;
        var path = ctx.ResolveDbPath(project);
        if (!File.Exists(path)) return true;
        try
        {
            using (new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete)) { }
            return true;
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            return false;
        }
    }

    private static async Task<IOrdoStore> OpenSqliteAsync(CliContext ctx, ProjectDefinition? project, string path, bool create, bool readOnly)
    {
        if (!create && !File.Exists(path))
        {
            throw new CliInputException($"there is no Ordo database at {path} (pass --db PATH, set ORDO_DB, or run a job first)");
        }

        var durability = project?.Storage?.Durability == "full" ? SqliteDurability.Full : SqliteDurability.Normal;
        var store = new SqliteOrdoStore(new SqliteStoreOptions { Path = path, Durability = durability, ReadOnly = readOnly });
        try
        {
            await store.InitializeAsync(ctx.Stop).ConfigureAwait(false);
        }
        catch (Microsoft.Data.Sqlite.SqliteException e) when (!readOnly && e.SqliteErrorCode is 8 or 14 && File.Exists(path))
        {
            // SQLITE_READONLY, SQLITE_CANTOPEN: the file (or its folder, where the log files go) may not be written.
            await store.DisposeAsync().ConfigureAwait(false);
            throw new StoreUnavailableException($"{path} cannot be written: the file or its folder is read-only ({e.Message})", e);
        }
        catch (Microsoft.Data.Sqlite.SqliteException e)
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw new CliInputException($"{path} cannot be opened as an Ordo database: {e.Message}");
        }
        catch (NotAnOrdoDatabaseException e)
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw new CliInputException(e.Message);
        }
        catch
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return store;
    }

    /// <summary>
    /// Opens the PostgreSQL store (creating or upgrading its schema unless <paramref name="create"/> is false): a connection
    /// string that cannot be parsed is an input error; a server that cannot be reached is named with its host and port.
    /// </summary>
    public static async Task<PostgresOrdoStore> OpenPostgresAsync(CliContext ctx, string connectionString, bool create)
    {
        PostgresOrdoStore store;
        try
        {
            store = new PostgresOrdoStore(new PostgresStoreOptions { ConnectionString = connectionString, CreateSchema = create });
        }
        catch (ArgumentException e)
        {
            throw new CliInputException($"{ctx.PostgresSource}: {e.Message.Split(" (Parameter", 2)[0]}");
        }

        try
        {
            await store.InitializeAsync(ctx.Stop).ConfigureAwait(false);
        }
        catch
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return store;
    }

    /// <summary>
    /// How long running steps get to finish after SIGTERM or Ctrl-C (<c>ORDO_SHUTDOWN_GRACE</c>, a duration such as
    /// <c>30s</c>; default 10 s). A step still running then is abandoned and its work item released.
    /// </summary>
    /// <exception cref="CliInputException">The variable is set to something that is not a duration.</exception>
    public static TimeSpan ShutdownGrace()
    {
        var text = Environment.GetEnvironmentVariable("ORDO_SHUTDOWN_GRACE");
        if (string.IsNullOrWhiteSpace(text)) return new OrdoRuntimeOptions().ShutdownGrace;
        return Durations.TryParse(text.Trim(), out var grace) && grace >= TimeSpan.Zero && grace <= MaxSetting
            ? grace
            : throw new CliInputException($"ORDO_SHUTDOWN_GRACE: '{text}' is not a duration of at most 24h (write it like 10s, 500ms or 2m)");
    }

    /// <summary>
    /// How long a claimed work item stays leased without renewal (<c>ORDO_LEASE</c>, a duration such as <c>30s</c>; default
    /// 30 s, at least 1 s). A worker renews its leases every third of it; a worker that stops renewing (paused, cut off
    /// from the store) loses its items to another worker once it runs out. Every process on one store should use the same.
    /// </summary>
    /// <exception cref="CliInputException">The variable is set to something that is not a duration of at least 1 s.</exception>
    public static TimeSpan LeaseDuration()
    {
        var text = Environment.GetEnvironmentVariable("ORDO_LEASE");
        if (string.IsNullOrWhiteSpace(text)) return new OrdoRuntimeOptions().LeaseDuration;
        return Durations.TryParse(text.Trim(), out var lease) && lease >= TimeSpan.FromSeconds(1) && lease <= MaxSetting
            ? lease
            : throw new CliInputException($"ORDO_LEASE: '{text}' is not a duration from 1s to 24h (write it like 30s or 2m)");
    }

    /// <summary>
    /// The most consecutive pure steps one commit writes (<c>ORDO_PURE_STEPS_PER_COMMIT</c>, a whole number from 1 to
    /// 1024; default 16; 1 gives every step a commit of its own). See <see cref="OrdoRuntimeOptions.PureStepsPerCommit"/>.
    /// </summary>
    /// <exception cref="CliInputException">The variable is set to something else.</exception>
    public static int PureStepsPerCommit()
    {
        var text = Environment.GetEnvironmentVariable("ORDO_PURE_STEPS_PER_COMMIT");
        if (string.IsNullOrWhiteSpace(text)) return new OrdoRuntimeOptions().PureStepsPerCommit;
        return int.TryParse(text.Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= MaxPureStepsPerCommit
            ? n
            : throw new CliInputException($"ORDO_PURE_STEPS_PER_COMMIT: '{text}' is not a whole number from 1 to {MaxPureStepsPerCommit} (1: a commit for every step)");
    }

    private const int MaxPureStepsPerCommit = 1024;

    /// <summary>The longest <c>ORDO_SHUTDOWN_GRACE</c> and <c>ORDO_LEASE</c>: longer ones would outrun the timers that wait for them.</summary>
    private static readonly TimeSpan MaxSetting = TimeSpan.FromHours(24);

    /// <summary>Parses a job id argument.</summary>
    public static JobId ParseJobId(string? text)
    {
        try
        {
            return JobId.Parse(text ?? "");
        }
        catch (FormatException e)
        {
            throw new CliInputException(e.Message);
        }
    }

    /// <summary>Reads a job or fails with a clear message.</summary>
    public async Task<JobRecord> GetJobAsync(JobId id, CancellationToken cancellationToken)
        => await Store.GetJobAsync(id, cancellationToken).ConfigureAwait(false) ?? throw new CliInputException($"job {id} does not exist in {DatabasePath}");

    public async ValueTask DisposeAsync()
    {
        // The container disposes the runtime and what it made (MCP servers, HTTP handlers); the store is the command's.
        await _services.DisposeAsync().ConfigureAwait(false);
        await Store.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>The 1-based column, in characters, of a byte offset within a 0-based line (the JSON reader counts bytes).</summary>
    private static int CharColumn(string text, int line, int bytePosition)
    {
        var lines = text.Split('\n');
        if (line >= lines.Length) return bytePosition + 1;
        var bytes = System.Text.Encoding.UTF8.GetBytes(lines[line]);
        return System.Text.Encoding.UTF8.GetCharCount(bytes, 0, Math.Min(bytePosition, bytes.Length)) + 1;
    }

    private static string FirstSentence(string message)
    {
        var i = message.IndexOf(". ", StringComparison.Ordinal);
        return i < 0 ? message : message[..(i + 1)];
    }
}

/// <summary>Shows the runtime's warnings and errors on stderr (not in quiet or JSON mode, where stdout must stay clean).</summary>
internal sealed class StderrLoggerProvider(CliContext ctx) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new StderrLogger(ctx);

    public void Dispose()
    {
    }

    private sealed class StderrLogger(CliContext ctx) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning && !ctx.Quiet;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            var message = formatter(state, exception);
            if (Redaction.MayHoldSecret(message)) message = Redaction.Text(message);
            lock (ctx.Err)
            {
                ctx.Err.WriteLine($"ordo: {(logLevel >= LogLevel.Error ? "error" : "warning")}: {message}");
            }
        }
    }
}
