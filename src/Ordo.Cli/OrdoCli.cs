using System.CommandLine;
using System.Globalization;
using Ordo.Cli.Commands;

namespace Ordo.Cli;

/// <summary>The <c>ordo</c> command line: parses arguments, runs a command, maps the outcome to an exit code.</summary>
internal static class OrdoCli
{
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, bool terminal, CancellationToken stop)
    {
        var g = new GlobalOptions();
        // A RootCommand would name itself after the entry assembly (Ordo.Cli) in usage lines; the command is ordo.
        var root = new Command("ordo", "Ordo: durable, governed orchestration for multi-agent AI workflows.") { new System.CommandLine.Help.HelpOption(), new VersionOption() };
        g.AddTo(root);
        var env = new CommandEnvironment(g, output, error, terminal, stop);
        foreach (var command in new[]
        {
            RunCommand.Create(env), SubmitCommand.Create(env), ValidateCommand.Create(env), GraphCommand.Create(env), ResumeCommand.Create(env),
            JobsCommand.Create(env), ShowCommand.Create(env), EventsCommand.Create(env), CancelCommand.Create(env),
            AuditCommand.Create(env), ApproveCommand.Create(env), KillCommand.Create(env), WorkerCommand.Create(env),
            DoctorCommand.Create(env), DbCommand.Create(env), ReplayCommand.Create(env), ExportCommand.Create(env), StatsCommand.Create(env), ReleasesCommand.Create(env), BenchCommand.Create(env), KeysCommand.Create(env), ServeCommand.Create(env),
        })
        {
            root.Add(command);
        }

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0 && !args.Any(a => a is "--help" or "-h" or "-?"))
        {
            foreach (var e in parse.Errors)
            {
                await error.WriteLineAsync($"ordo: {Redaction.Text(e.Message)}").ConfigureAwait(false);
            }

            await error.WriteLineAsync($"Run 'ordo {string.Join(' ', CommandPath(parse))} --help' for usage.".Replace("  ", " ", StringComparison.Ordinal)).ConfigureAwait(false);
            return ExitCodes.InvalidInput;
        }

        var config = new InvocationConfiguration { Output = output, Error = error, ProcessTerminationTimeout = null, EnableDefaultExceptionHandler = false };
        return await parse.InvokeAsync(config, stop).ConfigureAwait(false);
    }

    private static IEnumerable<string> CommandPath(ParseResult parse)
    {
        var names = new List<string>();
        for (var c = parse.CommandResult; c is not null && c.Parent is not null; c = c.Parent as System.CommandLine.Parsing.CommandResult)
        {
            names.Insert(0, c.Command.Name);
        }

        return names;
    }

    internal static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}

/// <summary>What every command needs to run: the global options and the console.</summary>
internal sealed class CommandEnvironment(GlobalOptions globals, TextWriter output, TextWriter error, bool terminal, CancellationToken stop)
{
    public GlobalOptions Globals { get; } = globals;

    /// <summary>Adds an action that builds the context, runs <paramref name="run"/> and turns exceptions into exit codes.</summary>
    public void SetAction(Command command, Func<CliContext, ParseResult, Task<int>> run)
    {
        command.SetAction(async (ParseResult parse, CancellationToken token) =>
        {
            var ctx = CliContext.From(parse, Globals, output, error, terminal, stop);
            try
            {
                return await run(ctx, parse).ConfigureAwait(false);
            }
            catch (OrdoValidationException e)
            {
                foreach (var p in e.Problems)
                {
                    await error.WriteLineAsync($"ordo: {Redaction.Text(p.ToString())}").ConfigureAwait(false);
                }

                if (e.Problems.Count > 1)
                {
                    await error.WriteLineAsync($"ordo: {e.Problems.Count} problems; nothing was created or changed").ConfigureAwait(false);
                }

                return ExitCodes.InvalidInput;
            }
            catch (Storage.QuotaExceededException e)
            {
                // Not a mistake in the request: the same submission passes later, so scripts can tell it apart and retry.
                await error.WriteLineAsync($"ordo: {e.Message}").ConfigureAwait(false);
                return ExitCodes.OverQuota;
            }
            catch (Engine.JobDefinitionChangedException e)
            {
                // The request was refused, but not for a mistake in it: the job it named has failed (definition_changed).
                await error.WriteLineAsync($"ordo: {e.Message}").ConfigureAwait(false);
                return ExitCodes.JobFailed;
            }
            catch (Exception e) when (e is CliInputException or OrdoRefusedException or Engine.DefinitionUnavailableException)
            {
                await error.WriteLineAsync($"ordo: {Redaction.Text(e.Message)}").ConfigureAwait(false);
                return ExitCodes.InvalidInput;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                await error.WriteLineAsync("ordo: interrupted").ConfigureAwait(false);
                return ExitCodes.Interrupted;
            }
            catch (Storage.StoreUnavailableException e)
            {
                // A full disk, a read-only file, a newer schema: no bug of Ordo's, and nothing written is lost.
                await error.WriteLineAsync($"ordo: the store cannot be used: {Redaction.Text(e.Message)}").ConfigureAwait(false);
                return ExitCodes.StoreUnavailable;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                var log = InternalErrorLog.Write(e, parse.Tokens.Select(t => t.Value));
                await error.WriteLineAsync($"ordo: internal error: {Redaction.Text(e.Message)}").ConfigureAwait(false);
                await error.WriteLineAsync($"ordo: details were written to {log}").ConfigureAwait(false);
                return ExitCodes.InternalError;
            }
        });
    }
}
