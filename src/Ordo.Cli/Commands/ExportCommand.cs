using System.CommandLine;
using Ordo.Cli.Hosting;
using Ordo.Replay;

namespace Ordo.Cli.Commands;

/// <summary><c>ordo export JOB_ID [--out FILE]</c>: one self-contained JSON document of a job, for replay suites and bug reports.</summary>
internal static class ExportCommand
{
    public static Command Create(CommandEnvironment env)
    {
        var jobArg = new Argument<string>("job") { Description = "The job id." };
        var outOption = new Option<string?>("--out", "-o") { Description = "Write the document to this file instead of stdout." };
        var command = new Command("export", "Write a job (its definition, its events and those of its sub-workflows) as one JSON document; secrets stay redacted.") { jobArg, outOption };
        env.SetAction(command, async (ctx, parse) =>
        {
            var id = CliHost.ParseJobId(parse.GetValue(jobArg));
            var target = parse.GetValue(outOption);
            if (target is not null && Directory.Exists(target))
            {
                throw new CliInputException($"--out: {target} is a folder; name a file (for example {Path.Combine(target, id + ".json")})");
            }

            var project = await CliHost.StoreProjectAsync(ctx).ConfigureAwait(false);
            await using var host = await CliHost.OpenAsync(ctx, project, create: false, readOnly: true).ConfigureAwait(false);
            var recording = await JobRecording.ReadAsync(host.Store, id, ctx.Stop).ConfigureAwait(false)
                ?? throw new CliInputException($"job {id} does not exist in {host.DatabasePath}");
            // An export is evidence and a replay suite's fixture: a definition changed in the database since its job
            // recorded the hash is not what the job ran on, and is not written out as if it were.
            foreach (var job in recording.Root.Tree())
            {
                if (recording.Definitions.TryGetValue(job.Job.DefinitionHash, out var definition) && Audit.DefinitionIntegrity.Problem(definition, job.Job.DefinitionHash) is { } changed)
                {
                    throw new OrdoRefusedException($"job {job.Job.JobId} cannot be exported: definition_changed: {changed} (ordo audit verify {job.Job.JobId} reports it; nothing was written)");
                }
            }

            var document = JobExport.Write(recording, host.Runtime.Gateway.Redactor.Redact);
            try
            {
                // What is written reads back: its events verify against their hashes (a replay checks them).
                _ = JobExport.Parse(document, target ?? "the export");
            }
            catch (OrdoValidationException e)
            {
                throw new OrdoRefusedException($"job {id} cannot be exported so that it reads back: {e.Message}; nothing was written");
            }

            if (target is null)
            {
                await ctx.Out.WriteLineAsync(document).ConfigureAwait(false);
                return ExitCodes.Ok;
            }

            var full = OutputFile.Check(target, host.Store is Ordo.Sqlite.SqliteOrdoStore ? host.DatabasePath : null, "an export", static head => OutputFile.IsJsonObjectStartingWith(head, "ordo_export"u8));
            var folder = Path.GetDirectoryName(full)!;
            var created = !Directory.Exists(folder);
            if (created) Directory.CreateDirectory(folder);
            // Written beside and moved into place: a suite never holds half a file.
            var temp = full + ".tmp-" + Environment.ProcessId;
            await File.WriteAllTextAsync(temp, document + "\n", ctx.Stop).ConfigureAwait(false);
            File.Move(temp, full, overwrite: true);
            if (ctx.Human)
            {
                if (created) await ctx.Out.WriteLineAsync($"created the folder {folder}").ConfigureAwait(false);
                var jobs = recording.Root.Tree().ToList();
                await ctx.Out.WriteLineAsync($"exported job {id} ({recording.Root.Job.WorkflowRef}, {jobs.Sum(j => j.Events.Count)} events{(jobs.Count > 1 ? $", {jobs.Count - 1} sub-workflow jobs" : "")}) to {target}").ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        });
        return command;
    }
}
