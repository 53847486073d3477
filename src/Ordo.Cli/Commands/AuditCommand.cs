using System.CommandLine;
using Ordo.Cli.Hosting;
using Ordo.Cli.Output;
using Ordo.Events;

namespace Ordo.Cli.Commands;

/// <summary><c>ordo audit verify [JOB_ID|--all]</c>: recompute every job's hash chain; exit 0 only if intact.</summary>
internal static class AuditCommand
{
    public static Command Create(CommandEnvironment env)
    {
        var jobArg = new Argument<string?>("job") { Description = "The job to check. Default: every job.", Arity = ArgumentArity.ZeroOrOne };
        var all = new Option<bool>("--all") { Description = "Check every job." };
        var verify = new Command("verify", "Recompute hash chains; exit 0 only if every checked chain is intact (3 if one is broken).") { jobArg, all };
        env.SetAction(verify, async (ctx, parse) =>
        {
            var text = parse.GetValue(jobArg);
            if (text is not null && parse.GetValue(all)) throw new CliInputException("give a job id or --all, not both");
            var project = await CliHost.StoreProjectAsync(ctx).ConfigureAwait(false);
            await using var host = await CliHost.OpenAsync(ctx, project, create: false, readOnly: true).ConfigureAwait(false);
            IReadOnlyList<JobId> ids;
            if (text is not null)
            {
                var id = CliHost.ParseJobId(text);
                await host.GetJobAsync(id, ctx.Stop).ConfigureAwait(false);
                ids = [id];
            }
            else
            {
                ids = (await host.Store.ListJobsAsync(new Storage.JobQuery { Limit = int.MaxValue }, ctx.Stop).ConfigureAwait(false)).Select(j => j.JobId).ToList();
            }

            var broken = 0;
            long events = 0;
            foreach (var id in ids)
            {
                var result = await AuditVerifier.VerifyAsync(host.Store, id, ctx.Stop).ConfigureAwait(false);
                events += result.Events;
                if (!result.Intact) broken++;
                if (ctx.Json)
                {
                    await ctx.Out.WriteLineAsync(JsonOut.Write(w =>
                    {
                        w.WriteStartObject();
                        w.WriteString("job_id", id.Value);
                        w.WriteBoolean("intact", result.Intact);
                        w.WriteNumber("events", result.Events);
                        if (result.BrokenAtSeq is { } seq) w.WriteNumber("broken_at_seq", seq); else w.WriteNull("broken_at_seq");
                        JsonOut.WriteNullable(w, "problem", result.Problem);
                        w.WriteEndObject();
                    })).ConfigureAwait(false);
                }
                else if (!result.Intact)
                {
                    await ctx.Err.WriteLineAsync($"ordo: job {id}: chain broken at seq {result.BrokenAtSeq}: {result.Problem}").ConfigureAwait(false);
                }
            }

            if (ctx.Human)
            {
                await ctx.Out.WriteLineAsync(broken == 0
                    ? $"ok: {ids.Count} job(s), {events} events, every hash chain intact"
                    : $"BROKEN: {broken} of {ids.Count} job(s) have a broken hash chain").ConfigureAwait(false);
            }

            return broken == 0 ? ExitCodes.Ok : ExitCodes.JobFailed;
        });
        var command = new Command("audit", "Audit the event logs.") { verify };
        return command;
    }
}
