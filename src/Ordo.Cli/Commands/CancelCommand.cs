using System.CommandLine;
using Ordo.Cli.Hosting;
using Ordo.Cli.Output;
using Ordo.State;

namespace Ordo.Cli.Commands;

/// <summary><c>ordo cancel JOB_ID</c>: cancel a job; no further step starts.</summary>
internal static class CancelCommand
{
    public static Command Create(CommandEnvironment env)
    {
        var jobArg = new Argument<string>("job") { Description = "The job id." };
        var reason = new Option<string?>("--reason") { Description = "Why (recorded in the log)." };
        var command = new Command("cancel", "Cancel a job; no further step starts.") { jobArg, reason };
        env.SetAction(command, async (ctx, parse) =>
        {
            var id = CliHost.ParseJobId(parse.GetValue(jobArg));
            var project = await CliHost.StoreProjectAsync(ctx).ConfigureAwait(false);
            await using var host = await CliHost.OpenAsync(ctx, project, create: false).ConfigureAwait(false);
            await host.GetJobAsync(id, ctx.Stop).ConfigureAwait(false);
            var cancelled = await host.Runtime.CancelAsync(id, parse.GetValue(reason) ?? "cancelled by user", ctx.Identity, ctx.Stop).ConfigureAwait(false);
            // Not cancelled: the job ended, perhaps while the cancel was being tried; its status is read again, as it ended.
            var status = cancelled ? "cancelled" : (await host.GetJobAsync(id, ctx.Stop).ConfigureAwait(false)).Status.ToWire();
            if (ctx.Json)
            {
                await ctx.Out.WriteLineAsync(JsonOut.Write(w =>
                {
                    w.WriteStartObject();
                    w.WriteString("job_id", id.Value);
                    w.WriteBoolean("cancelled", cancelled);
                    w.WriteString("status", status);
                    w.WriteEndObject();
                })).ConfigureAwait(false);
            }
            else if (!ctx.Quiet)
            {
                await ctx.Out.WriteLineAsync(cancelled ? $"job {id} cancelled" : $"job {id} had already ended ({status}); nothing changed").ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        });
        return command;
    }
}
