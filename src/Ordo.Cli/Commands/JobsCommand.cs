using System.CommandLine;
using Ordo.Cli.Hosting;
using Ordo.Cli.Output;
using Ordo.State;
using Ordo.Storage;

namespace Ordo.Cli.Commands;

/// <summary><c>ordo jobs</c>: list jobs, newest first.</summary>
internal static class JobsCommand
{
    public static Command Create(CommandEnvironment env)
    {
        var status = new Option<string?>("--status") { Description = "Only jobs with this status (queued, running, completed, failed, waiting_approval, cancelled)." };
        var tenant = new Option<string?>("--tenant") { Description = "Only jobs of this tenant." };
        var limit = new Option<int>("--limit") { Description = "At most this many. Default: 100.", DefaultValueFactory = _ => 100 };
        var command = new Command("jobs", "List jobs, newest first.") { status, tenant, limit };
        env.SetAction(command, async (ctx, parse) =>
        {
            JobStatus? filter = null;
            if (parse.GetValue(status) is { } s)
            {
                if (!JobStatusNames.TryParse(s, out var parsed))
                {
                    throw new CliInputException($"--status: '{s}' is not a job status (queued, running, completed, failed, waiting_approval, cancelled)");
                }

                filter = parsed;
            }

            if (parse.GetValue(limit) < 1) throw new CliInputException("--limit must be at least 1");
            var project = await CliHost.StoreProjectAsync(ctx).ConfigureAwait(false);
            await using var host = await CliHost.OpenAsync(ctx, project, create: false, readOnly: true).ConfigureAwait(false);
            var jobs = await host.Store.ListJobsAsync(new JobQuery { Status = filter, Tenant = parse.GetValue(tenant), Limit = parse.GetValue(limit) }, ctx.Stop).ConfigureAwait(false);
            if (ctx.Json)
            {
                await ctx.Out.WriteLineAsync(JsonOut.Write(w =>
                {
                    w.WriteStartArray();
                    foreach (var j in jobs) JobView.WriteJobRecord(w, j);
                    w.WriteEndArray();
                })).ConfigureAwait(false);
            }
            else if (!ctx.Quiet)
            {
                if (jobs.Count == 0)
                {
                    await ctx.Out.WriteLineAsync("no jobs").ConfigureAwait(false);
                }
                else
                {
                    // A shadow job (a dry run of a release's shadow version beside a production job) is marked as one.
                    static string Workflow(JobRecord j) => j.Shadow ? j.WorkflowRef + " (shadow)" : j.WorkflowRef;
                    var wf = Math.Max(8, jobs.Max(j => Workflow(j).Length));
                    await ctx.Out.WriteLineAsync($"{"job",-32}  {"workflow".PadRight(wf)}  {"tenant",-10}  {"status",-16}  created").ConfigureAwait(false);
                    foreach (var j in jobs)
                    {
                        await ctx.Out.WriteLineAsync($"{j.JobId.Value,-32}  {Workflow(j).PadRight(wf)}  {j.Tenant,-10}  {j.Status.ToWire(),-16}  {JsonOut.Timestamp(j.CreatedAt)}").ConfigureAwait(false);
                    }
                }
            }

            return ExitCodes.Ok;
        });
        return command;
    }
}
