using System.CommandLine;
using Microsoft.AspNetCore.Builder;
using Ordo.Cli.Hosting;
using Ordo.Configuration;
using Ordo.Server.Hosting;
using Ordo.Workflows;

namespace Ordo.Cli.Commands;

/// <summary>
/// <c>ordo serve [--urls URL] [--workers N]</c>: the HTTP API and the workers in one process, on the SQLite store or on PostgreSQL (<c>--postgres</c>); the
/// project's workflows are registered by name and version at start. SIGTERM or Ctrl-C drains it and exits 0.
/// </summary>
internal static class ServeCommand
{
    public static Command Create(CommandEnvironment env)
    {
        var urls = new Option<string>("--urls") { Description = "Where to listen. Default: http://127.0.0.1:5080.", DefaultValueFactory = _ => "http://127.0.0.1:5080" };
        var workers = CommonOptions.Workers();
        var rateLimit = new Option<int>("--rate-limit") { Description = "Requests one API key may make a minute; more are answered 429 with Retry-After. Default: 600.", DefaultValueFactory = _ => 600, HelpName = "N" };
        var command = new Command("serve", "Run the HTTP API and the workers in one process (SIGTERM or Ctrl-C drains it and exits 0).") { urls, workers, rateLimit };
        env.SetAction(command, async (ctx, parse) =>
        {
            var project = await CliHost.StoreProjectAsync(ctx).ConfigureAwait(false)
                ?? (File.Exists(WorkflowLoader.ConfigFileName) ? await WorkflowLoader.LoadProjectAsync(WorkflowLoader.ConfigFileName, null, ctx.Stop).ConfigureAwait(false) : null);
            var postgres = ctx.ResolvePostgres(project);
            var where = ctx.ResolveDbPath(project);
            if (postgres is not null)
            {
                // Opened (and its schema made or upgraded) before the server starts: a server that cannot be reached stops it here, named.
                await using var check = await CliHost.OpenPostgresAsync(ctx, postgres, create: true).ConfigureAwait(false);
                where = check.Location;
            }

            if (parse.GetValue(rateLimit) < 1) throw new CliInputException("--rate-limit must be at least 1 (requests per key a minute)");
            var code = CliHost.NewRegistry();
            var definitions = new List<WorkflowDefinition>();
            var files = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var file in WorkflowFiles(ctx, project))
            {
                // Every workflow of the project is checked against the project's config (its tools, models, tenants),
                // wherever its file is: the config's folder or one of its workflows: folders.
                var definition = await CliHost.LoadWorkflowAsync(ctx, file, code, project?.ConfigFile).ConfigureAwait(false);
                if (files.TryGetValue(definition.Ref, out var other))
                {
                    throw new CliInputException($"{Path.GetRelativePath(Directory.GetCurrentDirectory(), file)} and {Path.GetRelativePath(Directory.GetCurrentDirectory(), other)} both define {definition.Ref}: give one of them another version");
                }

                files[definition.Ref] = file;
                definitions.Add(definition);
            }

            CliHost.CheckProject(ctx, project, definitions);
            await using var app = ServerHost.Build(new ServeSettings
            {
                Urls = parse.GetValue(urls)!, DatabasePath = ctx.ResolveDbPath(project), Postgres = postgres, Project = project, Workflows = definitions, Code = code,
                Workers = parse.GetValue(workers), ShutdownGrace = CliHost.ShutdownGrace(), LeaseDuration = CliHost.LeaseDuration(), PureStepsPerCommit = CliHost.PureStepsPerCommit(), RateLimitPerMinute = parse.GetValue(rateLimit),
            });
            try
            {
                await app.StartAsync(ctx.Stop).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or FormatException or InvalidOperationException or UriFormatException && !ctx.Stop.IsCancellationRequested)
            {
                // A port in use, an address that is not one: the command line is wrong, not the program.
                throw new CliInputException($"cannot listen on {parse.GetValue(urls)}: {e.Message}");
            }

            if (definitions.Count == 0 && !ctx.Quiet)
            {
                await ctx.Err.WriteLineAsync($"ordo: warning: no workflow files in {string.Join(", ", ProjectFolders(ctx, project))}: every POST /v1/jobs will be refused (give --config ordo.yaml, or start it where the workflows are)").ConfigureAwait(false);
            }

            if (ctx.Human)
            {
                await ctx.Out.WriteLineAsync($"ordo: serving {string.Join(", ", app.Urls)} on {where} with {definitions.Count} workflow(s); SIGTERM or Ctrl-C stops it").ConfigureAwait(false);
                await ctx.Out.FlushAsync().ConfigureAwait(false);
            }

            try
            {
                await Task.Delay(Timeout.Infinite, ctx.Stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // SIGTERM or Ctrl-C: drain below.
            }

            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            if (ctx.Human) await ctx.Out.WriteLineAsync("ordo: server stopped; unfinished steps were released").ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>
    /// The workflow files of a project: the YAML files with a top-level <c>workflow:</c> and <c>steps:</c> in the config's
    /// folder (the working directory when there is no config) and in its <c>workflows:</c> folders.
    /// </summary>
    internal static IEnumerable<string> WorkflowFiles(CliContext ctx, ProjectDefinition? project)
        => ProjectFolders(ctx, project).Where(Directory.Exists)
            .SelectMany(d => Directory.EnumerateFiles(d, "*.yaml").Concat(Directory.EnumerateFiles(d, "*.yml")))
            .Where(f => !string.Equals(Path.GetFileName(f), WorkflowLoader.ConfigFileName, StringComparison.OrdinalIgnoreCase))
            .Where(LooksLikeWorkflow)
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal);

    private static List<string> ProjectFolders(CliContext ctx, ProjectDefinition? project)
    {
        var configFile = project?.ConfigFile ?? (ctx.Config is { Length: > 0 } c ? Path.GetFullPath(c) : null);
        var folders = new List<string> { configFile is null ? Directory.GetCurrentDirectory() : Path.GetDirectoryName(Path.GetFullPath(configFile))! };
        folders.AddRange(project?.WorkflowFolders ?? []);
        return folders.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>Whether a YAML file is a workflow (other YAML beside it, such as a CI file, is not loaded); a file over 1 MiB is left for the loader to refuse.</summary>
    private static bool LooksLikeWorkflow(string file)
    {
        if (new FileInfo(file).Length > 1 << 20) return true;
        bool workflow = false, steps = false;
        foreach (var line in File.ReadLines(file))
        {
            workflow |= line.StartsWith("workflow:", StringComparison.Ordinal);
            steps |= line.StartsWith("steps:", StringComparison.Ordinal);
        }

        return workflow && steps;
    }
}
