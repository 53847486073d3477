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

            var full = Destination(target, host.Store is Ordo.Sqlite.SqliteOrdoStore ? host.DatabasePath : null);
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

    /// <summary>
    /// The file <c>--out</c> names, after its links: never the store's database or its WAL, shared-memory or journal
    /// file, nor a file there that is something else than an export (a database, a document): only a new file, an
    /// empty one or a previous export is written. Throws <see cref="CliInputException"/>; nothing is written then.
    /// </summary>
    private static string Destination(string target, string? database)
    {
        var full = FileKinds.RealPath(target);
        if (database is not null)
        {
            var db = FileKinds.RealPath(database);
            foreach (var (suffix, what) in new[] { ("", "database"), ("-wal", "database's write-ahead log"), ("-shm", "database's shared memory file"), ("-journal", "database's journal") })
            {
                if (FileKinds.Same(full, db + suffix))
                {
                    throw new CliInputException($"--out: {target} is the store's {what} ({database + suffix}); the export would replace it and every job in it would be lost. Name another file; nothing was written");
                }
            }
        }

        var kind = FileKinds.Of(full);
        if (kind == FileKind.Missing) return full;
        if (kind != FileKind.Regular)
        {
            throw new CliInputException($"--out: {target}: {FileKinds.Describe(kind)}; an export is written to a regular file (leave --out out to print it). Nothing was written");
        }

        var head = new byte[4096];
        int n;
        using (var existing = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
        {
            n = existing.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        }

        if (n == 0 || IsExport(head.AsSpan(0, n))) return full;
        var found = head.AsSpan(0, n).StartsWith("SQLite format 3\0"u8) ? "it is an SQLite database" : "it does not start as a file written by ordo export does";
        throw new CliInputException($"--out: {target} already exists and is not an export ({found}); it is not overwritten: name another file, or remove it first. Nothing was written");
    }

    /// <summary>Whether a file starts as an export does: a JSON object whose first member is <c>ordo_export</c>.</summary>
    private static bool IsExport(ReadOnlySpan<byte> head)
    {
        if (head.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) head = head[3..];
        var reader = new System.Text.Json.Utf8JsonReader(head, isFinalBlock: false, state: default);
        try
        {
            return reader.Read() && reader.TokenType == System.Text.Json.JsonTokenType.StartObject
                && reader.Read() && reader.TokenType == System.Text.Json.JsonTokenType.PropertyName && reader.ValueTextEquals("ordo_export"u8);
        }
        catch (System.Text.Json.JsonException)
        {
            return false;
        }
    }
}
