using System.CommandLine;
using Ordo.Cli.Hosting;
using Ordo.Cli.Output;
using Ordo.Engine;

namespace Ordo.Cli.Commands;

/// <summary><c>ordo run WORKFLOW.yaml</c>: submit a job and run it to completion or to a pause, in this process.</summary>
internal static class RunCommand
{
    public static Command Create(CommandEnvironment env)
    {
        var workflow = new Argument<string>("workflow") { Description = "The workflow file." };
        var input = new Option<string?>("--input", "-i") { Description = "The job input: a JSON file, or - for stdin. Default: {}." };
        var tenant = new Option<string>("--tenant") { Description = "The tenant.", DefaultValueFactory = _ => "default" };
        var workers = CommonOptions.Workers();
        var dryRun = CommonOptions.DryRunJob();
        var command = new Command("run", "Submit a job and run it to completion or to a pause, in this process, on the embedded store.") { workflow, input, tenant, workers, dryRun };
        env.SetAction(command, async (ctx, parse) =>
        {
            var code = CliHost.NewRegistry();
            var definition = await CliHost.LoadWorkflowAsync(ctx, parse.GetValue(workflow)!, code).ConfigureAwait(false);
            CliHost.CheckProject(ctx, definition.Project, [definition]);
            var value = await CliHost.ReadInputAsync(parse.GetValue(input), ctx.Stop).ConfigureAwait(false);
            CliHost.ValidateInput(definition, value);
            var w = parse.GetValue(workers);

            var progress = new RunProgress(ctx, definition.Steps.Count);
            await using var host = await CliHost.OpenAsync(ctx, definition.Project, create: true, code, w, [progress]).ConfigureAwait(false);
            var job = await host.Runtime.SubmitAsync(definition, value.Value, new SubmitOptions
            {
                Tenant = parse.GetValue(tenant)!, Submitter = ctx.Identity, InputName = value.Name, DryRun = parse.GetValue(dryRun),
            }, ctx.Stop).ConfigureAwait(false);
            progress.Follow(job.JobId);
            if (ctx.Human)
            {
                await ctx.Out.WriteLineAsync($"ordo: running job {job.JobId} ({definition.Ref}, tenant {job.Tenant}{(parse.GetValue(dryRun) ? ", dry run" : "")})").ConfigureAwait(false);
            }

            var summary = await progress.RunAsync(() => host.Runtime.RunAsync(new RunRequest { RootJobId = job.JobId, UntilIdle = true }, ctx.Stop)).ConfigureAwait(false);
            var state = await host.Runtime.GetStateAsync(job.JobId, CancellationToken.None).ConfigureAwait(false) ?? throw new InvalidOperationException("the job vanished");
            return await Report(ctx, host, state, definition, summary.Stopped).ConfigureAwait(false);
        });
        return command;
    }

    internal static async Task<int> Report(CliContext ctx, CliHost host, State.JobState state, Workflows.WorkflowDefinition? definition, bool stopped)
    {
        var db = host.DatabasePath;
        // A job whose work went as far as it can while a child job waits for a human is paused too: say where.
        var waitingIn = stopped ? [] : await JobTree.WaitingUnderAsync(host, state).ConfigureAwait(false);
        if (ctx.Json)
        {
            await ctx.Out.WriteLineAsync(JsonOut.Write(w => JobView.WriteRunJson(w, state, definition, db, waitingIn))).ConfigureAwait(false);
        }
        else if (!ctx.Quiet)
        {
            await ctx.Out.WriteLineAsync().ConfigureAwait(false);
            HumanOut.WriteSummary(ctx.Out, state, definition, db);
            HumanOut.WriteWaitingIn(ctx.Out, state, waitingIn, db);
        }

        if (waitingIn.Count > 0)
        {
            return ExitCodes.WaitingApproval;
        }

        if (stopped && !state.Status.IsTerminalOrPaused())
        {
            await ctx.Err.WriteLineAsync($"ordo: stopped before job {state.JobId} finished; continue it with: ordo resume {state.JobId}{HumanOut.DbOption(db)}").ConfigureAwait(false);
            return ExitCodes.Interrupted;
        }

        if (state.Status == State.JobStatus.Failed && !ctx.Json && ctx.Quiet)
        {
            await ctx.Err.WriteLineAsync($"ordo: job {state.JobId} failed: {state.Reason}").ConfigureAwait(false);
        }

        return ExitCodes.ForStatus(state.Status);
    }
}

internal static class JobStatusExtensions
{
    public static bool IsTerminalOrPaused(this State.JobStatus s) => State.JobStatusNames.IsTerminal(s) || s == State.JobStatus.WaitingApproval;
}
