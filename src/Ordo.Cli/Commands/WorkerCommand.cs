using System.CommandLine;
using Ordo.Cli.Hosting;
using Ordo.Cli.Output;
using Ordo.Engine;

namespace Ordo.Cli.Commands;

/// <summary>
/// <c>ordo worker [--concurrency N]</c>: a long-running worker. It takes the work that <c>ordo submit</c>, servers and other
/// processes add to the database, waits for more without polling it (other processes ring when they add work), and on
/// SIGTERM or Ctrl-C drains: no new step starts, running ones finish (or are released after the grace), exit 0.
/// </summary>
internal static class WorkerCommand
{
    public static Command Create(CommandEnvironment env)
    {
        var concurrency = CommonOptions.Workers("--concurrency", "Steps this worker runs at once. Default: the number of cores.");
        var command = new Command("worker", "Run a long-running worker: takes work from the database until stopped (SIGTERM or Ctrl-C drains it and exits 0).") { concurrency };
        env.SetAction(command, async (ctx, parse) =>
        {
            var project = await CliHost.StoreProjectAsync(ctx).ConfigureAwait(false);
            var workers = parse.GetValue(concurrency);
            var progress = new RunProgress(ctx, 0, nameJobs: true);
            CliHost host;
            try
            {
                host = await CliHost.OpenAsync(ctx, project, create: true, workers: workers, observers: [progress]).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ctx.Stop.IsCancellationRequested)
            {
                // Stopped while it was still opening the store: it took no work, so it drained by definition.
                if (ctx.Human) await ctx.Out.WriteLineAsync("ordo: worker stopped before it took any work").ConfigureAwait(false);
                return ExitCodes.Ok;
            }

            await using var opened = host;
            progress.OnlyWorker = host.Runtime.Worker;
            if (ctx.Human)
            {
                await ctx.Out.WriteLineAsync($"ordo: worker {host.Runtime.Worker} on {host.DatabasePath}, {workers ?? Environment.ProcessorCount} at once; waiting for work (SIGTERM or Ctrl-C stops it)").ConfigureAwait(false);
            }

            var summary = await host.Runtime.RunAsync(new RunRequest { UntilIdle = false }, ctx.Stop).ConfigureAwait(false);
            if (ctx.Human)
            {
                await ctx.Out.WriteLineAsync($"ordo: worker stopped after {summary.StepsExecuted} step attempts; unfinished steps were released for other workers").ConfigureAwait(false);
            }
            else if (ctx.Json)
            {
                await ctx.Out.WriteLineAsync(JsonOut.Write(w =>
                {
                    w.WriteStartObject();
                    w.WriteString("worker", host.Runtime.Worker);
                    w.WriteNumber("steps_executed", summary.StepsExecuted);
                    w.WriteEndObject();
                })).ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        });
        return command;
    }
}
