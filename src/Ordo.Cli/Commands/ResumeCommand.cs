using System.CommandLine;
using Ordo.Cli.Hosting;
using Ordo.Cli.Output;
using Ordo.Engine;
using Ordo.State;

namespace Ordo.Cli.Commands;

/// <summary><c>ordo resume [JOB_ID]</c>: run all pending work (of one job, or of every job) to completion or pause.</summary>
internal static class ResumeCommand
{
    public static Command Create(CommandEnvironment env)
    {
        var jobArg = new Argument<string?>("job") { Description = "Only this job (and its sub-jobs). Default: every job.", Arity = ArgumentArity.ZeroOrOne };
        var workers = CommonOptions.Workers();
        var dryRun = new Option<bool>("--dry-run") { Description = "Run every job of this resume in dry run: tool calls with side effects (effect: write or irreversible) are recorded, not executed; read tools run normally. A job submitted with --dry-run stays in dry run without it." };
        var command = new Command("resume", "Run all pending work (of one job, or every job) to completion or pause: what a crash left behind.") { jobArg, workers, dryRun };
        env.SetAction(command, async (ctx, parse) =>
        {
            JobId? only = parse.GetValue(jobArg) is { } text ? CliHost.ParseJobId(text) : null;
            var w = parse.GetValue(workers);
            var project = await CliHost.StoreProjectAsync(ctx).ConfigureAwait(false);
            var progress = new RunProgress(ctx, 0);
            await using var host = await CliHost.OpenAsync(ctx, project, create: false, workers: w, observers: [progress], dryRun: parse.GetValue(dryRun)).ConfigureAwait(false);
            if (only is { } id)
            {
                await host.GetJobAsync(id, ctx.Stop).ConfigureAwait(false);
                progress.Follow(id);
            }

            var started = TimeProvider.System.GetTimestamp();
            var summary = await progress.RunAsync(() => host.Runtime.RunAsync(new RunRequest { RootJobId = only, UntilIdle = true }, ctx.Stop)).ConfigureAwait(false);
            if (only is { } job)
            {
                var state = await host.Runtime.GetStateAsync(job, CancellationToken.None).ConfigureAwait(false) ?? throw new InvalidOperationException("the job vanished");
                var definition = await TryDefinitionAsync(host, state).ConfigureAwait(false);
                return await RunCommand.Report(ctx, host, state, definition, summary.Stopped).ConfigureAwait(false);
            }

            var jobs = await host.Store.ListJobsAsync(new Storage.JobQuery { Limit = 10_000 }, CancellationToken.None).ConfigureAwait(false);
            if (ctx.Json)
            {
                await ctx.Out.WriteLineAsync(JsonOut.Write(wr =>
                {
                    wr.WriteStartObject();
                    wr.WriteNumber("steps_executed", summary.StepsExecuted);
                    wr.WriteBoolean("stopped", summary.Stopped);
                    wr.WriteStartObject("jobs");
                    foreach (var group in jobs.GroupBy(j => j.Status.ToWire()).OrderBy(g => g.Key, StringComparer.Ordinal)) wr.WriteNumber(group.Key, group.Count());
                    wr.WriteEndObject();
                    wr.WriteEndObject();
                })).ConfigureAwait(false);
            }
            else if (!ctx.Quiet)
            {
                var counts = string.Join(", ", jobs.GroupBy(j => j.Status.ToWire()).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Count()} {g.Key}"));
                await ctx.Out.WriteLineAsync($"ordo: resumed: {summary.StepsExecuted} step attempts in {HumanOut.Ms(TimeProvider.System.GetElapsedTime(started).TotalMilliseconds)}; jobs now: {(counts.Length == 0 ? "none" : counts)}").ConfigureAwait(false);
            }

            if (summary.Stopped)
            {
                await ctx.Err.WriteLineAsync($"ordo: stopped before all work was done; continue with: ordo resume{HumanOut.DbOption(host.DatabasePath)}").ConfigureAwait(false);
                return ExitCodes.Interrupted;
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    internal static async Task<Workflows.WorkflowDefinition?> TryDefinitionAsync(CliHost host, JobState state)
    {
        try
        {
            return await host.Runtime.Workflows.GetAsync(host.Store, state.DefinitionHash, host.Runtime.LoadOptions, CancellationToken.None).ConfigureAwait(false);
        }
        catch (OrdoException)
        {
            return null;
        }
    }
}
