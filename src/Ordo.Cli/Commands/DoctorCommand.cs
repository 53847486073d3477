using System.CommandLine;
using Ordo.Cli.Hosting;
using Ordo.Cli.Output;
using Ordo.State;
using Ordo.Storage;

namespace Ordo.Cli.Commands;

/// <summary>
/// <c>ordo doctor</c>: the store's health. A job that has not ended must have something that can move it: a work item, a
/// pending approval, or a running child job; a lease must be held by a live worker (or be about to be taken over).
/// Exit 0 only if nothing is wrong (3 otherwise).
/// </summary>
internal static class DoctorCommand
{
    public static Command Create(CommandEnvironment env)
    {
        var command = new Command("doctor", "Check the store's health: jobs left running with nothing that can move them, leases held by dead workers, the schema version; exit 0 only if nothing is wrong.");
        env.SetAction(command, async (ctx, parse) =>
        {
            var project = await CliHost.StoreProjectAsync(ctx).ConfigureAwait(false);
            await using var host = await CliHost.OpenAsync(ctx, project, create: false, readOnly: true).ConfigureAwait(false);
            var store = host.Store;
            var now = TimeProvider.System.GetUtcNow();

            var stranded = new List<(JobRecord Job, string Why)>();
            foreach (var job in await store.ListJobsWithoutWorkAsync(ctx.Stop).ConfigureAwait(false))
            {
                var state = await host.Runtime.GetStateAsync(job.JobId, ctx.Stop).ConfigureAwait(false);
                if (state is null || state.Status.IsTerminal() || state.HasPendingApprovals) continue;
                var children = await store.ListJobsAsync(new JobQuery { ParentJobId = job.JobId, Limit = 10_000 }, ctx.Stop).ConfigureAwait(false);
                if (children.Any(c => !c.Status.IsTerminal())) continue;
                stranded.Add((job, $"{state.Status.ToWire()} with no work item, no pending approval and no running child job: nothing can move it (ordo cancel {job.JobId} ends it)"));
            }

            var leases = new List<(LeaseRecord Lease, string Problem)>();
            foreach (var lease in await store.ListLeasesAsync(ctx.Stop).ConfigureAwait(false))
            {
                if (store.GetWorkerLiveness(lease.Owner) == WorkerLiveness.Dead)
                {
                    leases.Add((lease, "held by a worker whose process has ended; the next worker or ordo resume takes it over at once"));
                }
                else if (lease.ExpiresAt <= now)
                {
                    leases.Add((lease, $"expired at {JsonOut.Timestamp(lease.ExpiresAt)} without being renewed; the next worker or ordo resume takes it over"));
                }
            }

            var ok = stranded.Count == 0 && leases.Count == 0;
            if (ctx.Json)
            {
                await ctx.Out.WriteLineAsync(JsonOut.Write(w =>
                {
                    w.WriteStartObject();
                    w.WriteBoolean("ok", ok);
                    w.WriteNumber("schema_version", store.SchemaVersion);
                    w.WriteString("db", host.DatabasePath);
                    w.WriteStartArray("stranded_jobs");
                    foreach (var (job, why) in stranded)
                    {
                        w.WriteStartObject();
                        JobView.WriteJobRecordFields(w, job);
                        w.WriteString("problem", why);
                        w.WriteEndObject();
                    }

                    w.WriteEndArray();
                    w.WriteStartArray("leases");
                    foreach (var (lease, problem) in leases)
                    {
                        w.WriteStartObject();
                        w.WriteNumber("item_id", lease.ItemId);
                        w.WriteString("job_id", lease.JobId.Value);
                        w.WriteString("work_key", lease.WorkKey);
                        w.WriteString("owner", lease.Owner);
                        w.WriteString("expires_at", JsonOut.Timestamp(lease.ExpiresAt));
                        w.WriteString("problem", problem);
                        w.WriteEndObject();
                    }

                    w.WriteEndArray();
                    w.WriteEndObject();
                })).ConfigureAwait(false);
            }
            else if (!ctx.Quiet)
            {
                await ctx.Out.WriteLineAsync($"{host.DatabasePath}: schema version {store.SchemaVersion}").ConfigureAwait(false);
                foreach (var (job, why) in stranded)
                {
                    await ctx.Out.WriteLineAsync($"  job {job.JobId} ({job.WorkflowRef}, tenant {job.Tenant}) is {why}").ConfigureAwait(false);
                }

                foreach (var (lease, problem) in leases)
                {
                    await ctx.Out.WriteLineAsync($"  lease of {lease.WorkKey} in job {lease.JobId}, owner {lease.Owner}: {problem}").ConfigureAwait(false);
                }

                await ctx.Out.WriteLineAsync(ok ? "ok: every job can move, every lease is held by a live worker" : $"{stranded.Count + leases.Count} problem(s)").ConfigureAwait(false);
            }

            return ok ? ExitCodes.Ok : ExitCodes.JobFailed;
        });
        return command;
    }
}
