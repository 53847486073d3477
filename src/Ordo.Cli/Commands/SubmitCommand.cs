using System.CommandLine;
using Ordo.Cli.Hosting;
using Ordo.Cli.Output;
using Ordo.Engine;

namespace Ordo.Cli.Commands;

/// <summary><c>ordo submit WORKFLOW.yaml</c>: enqueue a job without running it.</summary>
internal static class SubmitCommand
{
    public static Command Create(CommandEnvironment env)
    {
        var workflow = new Argument<string>("workflow") { Description = "The workflow file." };
        var input = new Option<string?>("--input", "-i") { Description = "The job input: a JSON file, or - for stdin. Default: {}." };
        var tenant = new Option<string>("--tenant") { Description = "The tenant.", DefaultValueFactory = _ => "default" };
        var priority = new Option<int>("--priority") { Description = "Higher runs first. Default: 0." };
        var dryRun = CommonOptions.DryRunJob();
        var command = new Command("submit", "Enqueue a job without running it (for ordo resume, workers or a server); prints its id.") { workflow, input, tenant, priority, dryRun };
        env.SetAction(command, async (ctx, parse) =>
        {
            var code = CliHost.NewRegistry();
            var definition = await CliHost.LoadWorkflowAsync(ctx, parse.GetValue(workflow)!, code).ConfigureAwait(false);
            var value = await CliHost.ReadInputAsync(parse.GetValue(input), ctx.Stop).ConfigureAwait(false);
            CliHost.ValidateInput(definition, value);
            await using var host = await CliHost.OpenAsync(ctx, definition.Project, create: true, code).ConfigureAwait(false);
            var job = await host.Runtime.SubmitAsync(definition, value.Value, new SubmitOptions
            {
                Tenant = parse.GetValue(tenant)!, Submitter = ctx.Identity, Priority = parse.GetValue(priority), InputName = value.Name, DryRun = parse.GetValue(dryRun),
            }, ctx.Stop).ConfigureAwait(false);
            if (ctx.Json)
            {
                await ctx.Out.WriteLineAsync(JsonOut.Write(w => JobView.WriteJobRecord(w, job))).ConfigureAwait(false);
            }
            else
            {
                await ctx.Out.WriteLineAsync(job.JobId.Value).ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        });
        return command;
    }
}
