using Ordo.Storage;
using System.CommandLine;
using System.Text.Json;
using Ordo.Audit;
using Ordo.Cli.Hosting;
using Ordo.Cli.Output;

namespace Ordo.Cli.Commands;

/// <summary>
/// <c>ordo audit verify [JOB_ID|--all] [--checkpoint FILE]</c>: recompute every job's hash chain, check stored
/// definitions and the store's audit log, and with a checkpoint prove that nothing it covered was lost or changed; exit
/// 0 only if intact. <c>ordo audit checkpoint [--out FILE]</c>: sign the audit log's head with the audit key.
/// </summary>
internal static class AuditCommand
{
    public static Command Create(CommandEnvironment env)
    {
        var command = new Command("audit", "Audit the event logs and the store's audit log.") { Verify(env), Checkpoint(env) };
        return command;
    }

    private static Command Verify(CommandEnvironment env)
    {
        var jobArg = new Argument<string?>("job") { Description = "The job to check. Default: every job.", Arity = ArgumentArity.ZeroOrOne };
        var all = new Option<bool>("--all") { Description = "Check every job." };
        var checkpointOption = new Option<string?>("--checkpoint") { Description = "A checkpoint file of `ordo audit checkpoint --out`: also prove that everything it covered is still there, unchanged." };
        var verify = new Command("verify", "Recompute hash chains, check stored definitions and the audit log; exit 0 only if intact (3 if not).") { jobArg, all, checkpointOption };
        env.SetAction(verify, async (ctx, parse) =>
        {
            var text = parse.GetValue(jobArg);
            if (text is not null && parse.GetValue(all)) throw new CliInputException("give a job id or --all, not both");
            var project = await CliHost.StoreProjectAsync(ctx).ConfigureAwait(false);
            AuditCheckpointFile? checkpoint = null;
            string? keyPath = null;
            if (parse.GetValue(checkpointOption) is { } file)
            {
                // The checkpoint and its signature first: a bad file or key changes nothing and reads no database.
                checkpoint = await AuditCheckpointJson.ReadFileAsync(file, ctx.Stop).ConfigureAwait(false);
                keyPath = CliContext.ResolveAuditKeyPath(project);
                CheckSignature(Path.GetFullPath(file), checkpoint, keyPath);
            }

            // Reading the log seals the leaves that wait first (docs/audit.md), so the database is opened for writing
            // when this user may write it; a file that cannot be written is verified as it is.
            CliHost opened;
            var writable = CliHost.MayWriteDatabase(ctx, project);
            try
            {
                opened = await CliHost.OpenAsync(ctx, project, create: false, readOnly: !writable).ConfigureAwait(false);
            }
            catch (Exception e) when (e is CliInputException or StoreUnavailableException && writable && ctx.ResolvePostgres(project) is null)
            {
                // A file this user may write in a folder it may not (no log file can be made there): read as it is.
                opened = await CliHost.OpenAsync(ctx, project, create: false, readOnly: true).ConfigureAwait(false);
            }

            await using var host = opened;
            AuditReport report;
            if (text is not null)
            {
                var id = CliHost.ParseJobId(text);
                // A job the checkpoint or the audit log knows is reported deleted; one neither knows does not exist.
                if (await host.Store.GetJobAsync(id, ctx.Stop).ConfigureAwait(false) is null && checkpoint?.Jobs.Any(j => j.JobId == id) != true)
                {
                    var logged = false;
                    await foreach (var leaf in host.Store.ReadAuditLeavesOfAsync(id.Value, ctx.Stop).ConfigureAwait(false))
                    {
                        logged = true;
                        break;
                    }

                    if (!logged) await host.GetJobAsync(id, ctx.Stop).ConfigureAwait(false);
                }

                report = await AuditChecker.CheckJobAsync(host.Store, id, checkpoint, ctx.Stop).ConfigureAwait(false);
            }
            else
            {
                report = await AuditChecker.CheckAllAsync(host.Store, checkpoint, ctx.Stop).ConfigureAwait(false);
            }

            await WriteReportAsync(ctx, report, checkpoint).ConfigureAwait(false);
            return report.Intact ? ExitCodes.Ok : ExitCodes.JobFailed;
        });
        return verify;
    }

    private static void CheckSignature(string file, AuditCheckpointFile checkpoint, string keyPath)
    {
        using var key = AuditKey.Load(keyPath);
        var cp = checkpoint.Checkpoint;
        if (!string.Equals(cp.KeyId, key.KeyId, StringComparison.Ordinal))
        {
            throw new CliInputException($"checkpoint {file}: it was signed with key {cp.KeyId}, but the audit key {keyPath} is {key.KeyId}; nothing was checked");
        }

        if (!key.Verifies(cp))
        {
            throw new CliInputException($"checkpoint {file}: its signature does not verify with the audit key {keyPath}: the file was altered; nothing was checked");
        }

        if (checkpoint.Jobs.Count > 0 && !CheckpointJob.Digest(checkpoint.Jobs).AsSpan().SequenceEqual(cp.JobsDigest))
        {
            throw new CliInputException($"checkpoint {file}: its list of jobs does not match the digest it signed: the file was altered; nothing was checked");
        }
    }

    private static async Task WriteReportAsync(CliContext ctx, AuditReport report, AuditCheckpointFile? checkpoint)
    {
        var events = report.Jobs.Sum(j => j.Events);
        foreach (var job in report.Jobs)
        {
            if (ctx.Json)
            {
                await ctx.Out.WriteLineAsync(JsonOut.Write(w =>
                {
                    w.WriteStartObject();
                    w.WriteString("job_id", job.JobId.Value);
                    w.WriteBoolean("intact", job.Intact);
                    w.WriteString("status", job.Status.ToWire());
                    w.WriteNumber("events", job.Events);
                    if (job.BrokenAtSeq is { } seq) w.WriteNumber("broken_at_seq", seq); else w.WriteNull("broken_at_seq");
                    JsonOut.WriteNullable(w, "problem", job.Problems.Count > 0 ? job.Problems[0] : null);
                    w.WriteStartArray("problems");
                    foreach (var p in job.Problems) w.WriteStringValue(p);
                    w.WriteEndArray();
                    if (checkpoint is not null) w.WriteBoolean("in_checkpoint", job.InCheckpoint);
                    w.WriteEndObject();
                })).ConfigureAwait(false);
            }
            else if (!job.Intact)
            {
                var what = job.BrokenAtSeq is { } seq && job.Status is JobAuditStatus.Rewritten or JobAuditStatus.Truncated
                    ? $"chain broken at seq {seq}: {job.Problems[0]}"
                    : $"{job.Status.ToWire()}: {job.Problems[0]}";
                await ctx.Err.WriteLineAsync($"ordo: job {job.JobId}: {what}").ConfigureAwait(false);
                foreach (var more in job.Problems.Skip(1)) await ctx.Err.WriteLineAsync($"ordo:   also: {more}").ConfigureAwait(false);
            }
        }

        foreach (var p in report.LogProblems) if (ctx.Human) await ctx.Err.WriteLineAsync($"ordo: audit log: {p}").ConfigureAwait(false);
        foreach (var p in report.DefinitionProblems) if (ctx.Human) await ctx.Err.WriteLineAsync($"ordo: {p}").ConfigureAwait(false);

        if (ctx.Json)
        {
            await ctx.Out.WriteLineAsync(JsonOut.Write(w =>
            {
                w.WriteStartObject();
                w.WriteStartObject("audit_log");
                w.WriteBoolean("intact", report.Intact);
                w.WriteNumber("tree_size", report.Head.Size);
                w.WriteString("root", Convert.ToHexStringLower(report.Head.Root));
                if (report.Checkpoint is { } cp)
                {
                    w.WriteNumber("checkpoint_tree_size", cp.TreeSize);
                    w.WriteString("checkpoint_time", JsonOut.Timestamp(cp.Time));
                    w.WriteNumber("jobs_added_since", report.Jobs.Count(j => !j.InCheckpoint && j.Status != JobAuditStatus.Deleted));
                }

                w.WriteStartArray("problems");
                foreach (var p in report.LogProblems.Concat(report.DefinitionProblems)) w.WriteStringValue(p);
                w.WriteEndArray();
                w.WriteEndObject();
                w.WriteEndObject();
            })).ConfigureAwait(false);
        }
        else if (ctx.Human)
        {
            var broken = report.Jobs.Count(j => !j.Intact);
            var against = report.Checkpoint is { } cp
                ? $"; the audit log ({report.Head.Size} leaves) extends the checkpoint of {JsonOut.Timestamp(cp.Time)} ({cp.TreeSize} leaves), {report.Jobs.Count(j => !j.InCheckpoint)} job(s) added since"
                : "";
            await ctx.Out.WriteLineAsync(report.Intact
                ? $"ok: {report.Jobs.Count} job(s), {events} events, every hash chain intact, every definition unchanged{against}"
                : $"BROKEN: {broken} of {report.Jobs.Count} job(s) have a broken hash chain or differ from the audit log{(report.LogProblems.Count + report.DefinitionProblems.Count > 0 ? $"; {report.LogProblems.Count + report.DefinitionProblems.Count} problem(s) with the audit log or definitions" : "")}").ConfigureAwait(false);
        }
    }

    private static Command Checkpoint(CommandEnvironment env)
    {
        var outOption = new Option<string?>("--out") { Description = "Also write the checkpoint, with every job's head, to this file: keep it outside the database." };
        var checkpoint = new Command("checkpoint", "Sign the store's audit log as it is now (size, root, time) with the audit key, record it in the store, and write it to --out.") { outOption };
        env.SetAction(checkpoint, async (ctx, parse) =>
        {
            var project = await CliHost.StoreProjectAsync(ctx).ConfigureAwait(false);
            var output = parse.GetValue(outOption) is { } o ? Path.GetFullPath(o) : null;
            if (output is not null && !Directory.Exists(Path.GetDirectoryName(output)))
            {
                throw new CliInputException($"--out {output}: the folder {Path.GetDirectoryName(output)} does not exist; nothing was written");
            }

            // A missing SQLite database is an input error before anything is created, the key included (a PostgreSQL
            // store that does not exist is refused when it is opened, exit 7, before the key is made).
            var postgres = ctx.ResolvePostgres(project);
            if (postgres is null && !File.Exists(ctx.ResolveDbPath(project)))
            {
                throw new CliInputException($"there is no Ordo database at {ctx.ResolveDbPath(project)} (pass --db PATH, set ORDO_DB, or run a job first); nothing was created");
            }

            // Never the database itself, nor a file that is not an earlier checkpoint: checked before the key is made.
            if (output is not null)
            {
                output = OutputFile.Check(output, postgres is null ? ctx.ResolveDbPath(project) : null, "a checkpoint", static head => OutputFile.IsJsonObjectStartingWith(head, "format"u8));
            }

            await using var host = await CliHost.OpenAsync(ctx, project, create: false).ConfigureAwait(false);
            var keyPath = CliContext.ResolveAuditKeyPath(project);
            var existed = File.Exists(keyPath);
            using var key = AuditKey.LoadOrCreate(keyPath);

            // The jobs' heads first, then the tree: every head listed was written before the tree head was read.
            var jobs = (await host.Store.ListJobsAsync(new Storage.JobQuery { Limit = int.MaxValue }, ctx.Stop).ConfigureAwait(false))
                .Where(j => j.LastSeq > 0)
                .Select(j => new CheckpointJob(j.JobId, j.LastSeq, j.HeadHash))
                .OrderBy(j => j.JobId.Value, StringComparer.Ordinal)
                .ToList();
            var head = await AuditLog.GetHeadAsync(host.Store, ctx.Stop).ConfigureAwait(false);
            var signed = key.Sign(head.Size, head.Root, TimeProvider.System.GetUtcNow(), CheckpointJob.Digest(jobs));
            if (output is not null)
            {
                await AuditCheckpointJson.WriteFileAsync(output, new AuditCheckpointFile(signed, jobs), ctx.Stop).ConfigureAwait(false);
            }

            await host.Store.AddAuditCheckpointAsync(signed, ctx.Stop).ConfigureAwait(false);
            if (ctx.Json)
            {
                await ctx.Out.WriteLineAsync(JsonOut.Write(w =>
                {
                    using var doc = JsonDocument.Parse(JsonOut.Write(inner => AuditCheckpointJson.Write(inner, signed)));
                    w.WriteStartObject();
                    foreach (var p in doc.RootElement.EnumerateObject()) p.WriteTo(w);
                    w.WriteNumber("jobs", jobs.Count);
                    w.WriteString("key", keyPath);
                    JsonOut.WriteNullable(w, "out", output);
                    w.WriteEndObject();
                })).ConfigureAwait(false);
            }
            else if (ctx.Human)
            {
                if (!existed) await ctx.Err.WriteLineAsync($"ordo: created the audit key {keyPath} (owner-only); keep it away from those who can write the database").ConfigureAwait(false);
                await ctx.Out.WriteLineAsync($"ok: checkpoint of {head.Size} leaves, root {Convert.ToHexStringLower(head.Root)}, {jobs.Count} job(s), at {JsonOut.Timestamp(signed.Time)}, signed with {key.KeyId} ({keyPath})").ConfigureAwait(false);
                await ctx.Out.WriteLineAsync(output is not null
                    ? $"written to {output}; keep it outside the database (verify with: ordo audit verify --checkpoint {output})"
                    : "recorded in the store only: pass --out FILE to keep a copy outside the database, which is what verify needs").ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        });
        return checkpoint;
    }
}
