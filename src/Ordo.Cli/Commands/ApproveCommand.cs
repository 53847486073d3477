using System.CommandLine;
using Ordo.Cli.Hosting;
using Ordo.Cli.Output;
using Ordo.Engine;
using Ordo.State;

namespace Ordo.Cli.Commands;

/// <summary><c>ordo approve JOB_ID [--approval ID] --as IDENTITY [--deny] [--reason TEXT]</c>: record an approval decision.</summary>
internal static class ApproveCommand
{
    public static Command Create(CommandEnvironment env)
    {
        var jobArg = new Argument<string>("job") { Description = "The job id." };
        var approval = new Option<string?>("--approval") { Description = "The approval id (optional when the job has exactly one pending approval)." };
        var deny = new Option<bool>("--deny") { Description = "Deny instead of approve." };
        var reason = new Option<string?>("--reason") { Description = "Why (recorded in the log)." };
        var command = new Command("approve", "Record an approval decision; on SQLite, run ordo resume to continue the job (on PostgreSQL its workers do).") { jobArg, approval, deny, reason };
        env.SetAction(command, async (ctx, parse) =>
        {
            var id = CliHost.ParseJobId(parse.GetValue(jobArg));
            var project = await CliHost.StoreProjectAsync(ctx).ConfigureAwait(false);
            await using var host = await CliHost.OpenAsync(ctx, project, create: false).ConfigureAwait(false);
            await host.GetJobAsync(id, ctx.Stop).ConfigureAwait(false);
            // A refused decision (ApprovalException) is the caller's error: exit 2, nothing recorded.
            var outcome = await host.Runtime.DecideAsync(id, parse.GetValue(approval), ctx.Identity, !parse.GetValue(deny), parse.GetValue(reason), ctx.Stop).ConfigureAwait(false);

            if (ctx.Json)
            {
                await ctx.Out.WriteLineAsync(JsonOut.Write(w =>
                {
                    w.WriteStartObject();
                    w.WriteString("job_id", id.Value);
                    w.WriteString("approval_id", outcome.ApprovalId);
                    w.WriteString("status", outcome.Status);
                    w.WriteNumber("remaining", outcome.Remaining);
                    w.WriteString("job_status", outcome.JobStatus.ToWire());
                    w.WriteEndObject();
                })).ConfigureAwait(false);
            }
            else if (!ctx.Quiet)
            {
                var message = outcome.Status switch
                {
                    "pending" => $"{ctx.Identity} approved {outcome.ApprovalId}; {outcome.Remaining} more distinct approver(s) needed",
                    "approved" => $"{outcome.ApprovalId} approved; {HumanOut.HowItContinues(id, host.DatabasePath)}",
                    "denied" => $"{outcome.ApprovalId} denied; job {id} is {outcome.JobStatus.ToWire()}",
                    _ => $"{outcome.ApprovalId} is {outcome.Status}; job {id} is {outcome.JobStatus.ToWire()}",
                };
                await ctx.Out.WriteLineAsync(message).ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        });
        return command;
    }
}
