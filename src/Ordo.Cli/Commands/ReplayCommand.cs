using System.CommandLine;
using System.Text.Json;
using Ordo.Cli.Hosting;
using Ordo.Cli.Output;
using Ordo.Replay;
using Ordo.Testing;
using Ordo.Workflows;

namespace Ordo.Cli.Commands;

/// <summary>
/// <c>ordo replay JOB_ID|FILE.json [--workflow FILE]</c> and <c>ordo replay --suite DIR</c>: re-run recorded jobs with
/// their recorded model and tool answers (nothing is called) and report the first divergence; exit 6 when one diverged.
/// </summary>
internal static class ReplayCommand
{
    public static Command Create(CommandEnvironment env)
    {
        var targetArg = new Argument<string?>("job") { Description = "A job id (from the store) or a file written by ordo export.", Arity = ArgumentArity.ZeroOrOne };
        var workflowOption = new Option<string?>("--workflow", "-w") { Description = "Replay against this workflow file instead of the job's own definition." };
        var suiteOption = new Option<string?>("--suite") { Description = "Replay every exported job (*.json) in this folder; exit 0 only if none diverged." };
        var command = new Command("replay", "Re-run a recorded job with its recorded model and tool answers and report the first divergence.") { targetArg, workflowOption, suiteOption };
        env.SetAction(command, async (ctx, parse) =>
        {
            var target = parse.GetValue(targetArg);
            var suite = parse.GetValue(suiteOption);
            if ((target is null) == (suite is null))
            {
                throw new CliInputException(suite is null ? "name a job id or an export file to replay, or --suite DIR" : "give either a job or --suite DIR, not both");
            }

            var code = CliHost.NewRegistry();
            var file = parse.GetValue(workflowOption);
            WorkflowDefinition? workflow = null;
            if (file is not null)
            {
                workflow = await CliHost.LoadWorkflowAsync(ctx, file, code).ConfigureAwait(false);
            }

            // Everything is read (and every file checked) before anything is replayed.
            var recordings = suite is not null ? await ReadSuiteAsync(suite, ctx.Stop).ConfigureAwait(false) : [await ReadOneAsync(ctx, target!).ConfigureAwait(false)];
            if (workflow is not null)
            {
                // A job is replayed against a version of its own workflow: one of another name is a mistake, not a change to test.
                var names = recordings.Select(r => r.Root.Job.Workflow).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
                if (suite is null && names[0] != workflow.Name)
                {
                    throw new CliInputException($"--workflow {file}: it defines workflow '{workflow.Name}', but job {recordings[0].Root.Job.JobId} is a job of workflow '{names[0]}'; replay a job against a version of its own workflow");
                }

                if (suite is not null && !names.Contains(workflow.Name, StringComparer.Ordinal))
                {
                    throw new CliInputException($"--workflow {file}: it defines workflow '{workflow.Name}', and no job of the suite {suite} is a job of it (its jobs are of {string.Join(", ", names.Select(n => $"'{n}'"))}); nothing was replayed");
                }
            }

            var reports = new List<ReplayReport>();
            foreach (var recording in recordings)
            {
                // A new definition replaces the recorded one only for the jobs of its workflow.
                var against = workflow is not null && workflow.Name == recording.Root.Job.Workflow ? workflow : null;
                await using var store = new InMemoryOrdoStore();
                reports.Add(await JobReplayer.ReplayAsync(recording, new ReplayOptions { Store = store, Workflow = against, Code = code }, ctx.Stop).ConfigureAwait(false));
            }

            if (ctx.Json)
            {
                await ctx.Out.WriteLineAsync(suite is null ? ToJson(reports[0]) : "[" + string.Join(",", reports.Select(ToJson)) + "]").ConfigureAwait(false);
            }
            else if (ctx.Human)
            {
                foreach (var report in reports) await ctx.Out.WriteLineAsync(Human(report)).ConfigureAwait(false);
                if (suite is not null)
                {
                    await ctx.Out.WriteLineAsync($"{reports.Count} jobs replayed, {reports.Count(r => r.Diverged)} diverged").ConfigureAwait(false);
                }
            }

            return reports.Any(r => r.Diverged) ? ExitCodes.Diverged : ExitCodes.Ok;
        });
        return command;
    }

    private static async Task<JobRecording> ReadOneAsync(CliContext ctx, string target)
    {
        if (File.Exists(target) || target.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            return await ReadFileAsync(target, ctx.Stop).ConfigureAwait(false);
        }

        var id = CliHost.ParseJobId(target);
        var project = await CliHost.StoreProjectAsync(ctx).ConfigureAwait(false);
        await using var host = await CliHost.OpenAsync(ctx, project, create: false, readOnly: true).ConfigureAwait(false);
        return await JobRecording.ReadAsync(host.Store, id, ctx.Stop).ConfigureAwait(false)
            ?? throw new CliInputException($"job {id} does not exist in {host.DatabasePath}");
    }

    /// <summary>The largest export read (64 MB), counted in bytes read.</summary>
    private const long MaxExportBytes = CliHost.MaxInputBytes * 4L;

    private static async Task<JobRecording> ReadFileAsync(string file, CancellationToken cancellationToken)
    {
        // Only a regular file is opened: a FIFO would block the open (even a stop signal), a device never ends.
        var kind = FileKinds.Of(file);
        if (kind == FileKind.Missing) throw new CliInputException($"{file}: the export file does not exist");
        if (kind != FileKind.Regular) throw new CliInputException($"{file}: not read: {FileKinds.Describe(kind)}; an export is a regular file");
        byte[]? bytes;
        try
        {
            bytes = await FileKinds.ReadAtMostAsync(file, MaxExportBytes, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw new CliInputException($"{file}: the export cannot be read: {e.Message}");
        }

        if (bytes is null) throw new CliInputException($"{file}: the export is larger than {MaxExportBytes / (1024 * 1024)} MB");
        string text;
        try
        {
            text = JsonElementFactory.DecodeUtf8(bytes);
        }
        catch (FormatException e)
        {
            throw new CliInputException($"{file}: the export is not UTF-8 text: {e.Message}");
        }

        return JobExport.Parse(text, file);
    }

    /// <summary>
    /// The exports of a suite folder: its <c>*.json</c> regular files, and links to regular files inside the folder. A link
    /// that leaves the folder, a FIFO, a device, a socket or a folder named <c>*.json</c> is never opened: each is
    /// reported, with every file that is not an export, and nothing is replayed.
    /// </summary>
    private static async Task<List<JobRecording>> ReadSuiteAsync(string folder, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(folder)) throw new CliInputException($"--suite: {folder} is not a folder");
        var entries = Directory.EnumerateFileSystemEntries(folder, "*.json", SearchOption.TopDirectoryOnly).Order(StringComparer.Ordinal).ToList();
        if (entries.Count == 0) throw new CliInputException($"--suite: {folder} holds no exported jobs (*.json files written by ordo export)");
        var real = FileKinds.RealPath(folder);
        var problems = new List<ValidationProblem>();
        var recordings = new List<JobRecording>(entries.Count);
        foreach (var entry in entries)
        {
            var kind = FileKinds.Of(entry);
            if (new FileInfo(entry).LinkTarget is not null && kind != FileKind.Missing && !FileKinds.IsWithin(FileKinds.RealPath(entry), real))
            {
                problems.Add(new ValidationProblem(entry, 0, 0, "", $"not read: it is a symbolic link to a file outside the suite folder {folder}; a suite reads only its own files (copy the export into it)"));
                continue;
            }

            if (kind != FileKind.Regular)
            {
                problems.Add(new ValidationProblem(entry, 0, 0, "", $"not read: {FileKinds.Describe(kind)}; an export is a regular file"));
                continue;
            }

            try
            {
                recordings.Add(await ReadFileAsync(entry, cancellationToken).ConfigureAwait(false));
            }
            catch (OrdoValidationException e)
            {
                problems.AddRange(e.Problems);
            }
            catch (CliInputException e)
            {
                problems.Add(new ValidationProblem(null, 0, 0, "", e.Message));
            }
        }

        return problems.Count > 0 ? throw new OrdoValidationException(problems) : recordings;
    }

    private static string Human(ReplayReport r)
    {
        if (r.Divergence is not { } d)
        {
            if (r.UpToCancellation)
            {
                return $"job {r.JobId} ({r.Workflow}): matches the recording up to its cancellation: the job was cancelled ({r.RecordedStatus}); its recording holds {r.RecordedEvents} events and {r.ReplayedSteps} steps, and the replay did the same up to the cancellation; {r.AnswersServed} recorded answers used";
            }

            return r.RecordingEnded
                ? $"job {r.JobId} ({r.Workflow}): {r.ReplayedSteps} steps replayed, {r.AnswersServed} recorded answers used; matches the recording"
                : $"job {r.JobId} ({r.Workflow}): matches the recording so far: the job had not ended ({r.RecordedStatus}); its recording stops after {r.RecordedEvents} events and {r.ReplayedSteps} steps, and the replay did the same up to there; {r.AnswersServed} recorded answers used";
        }

        var where = $"step '{d.Step}'{(d.Visit > 1 ? $" visit {d.Visit}" : "")}{(d.Scope is null ? "" : $" [{d.Scope}]")}{(d.ChildJobId is null ? "" : $" of sub-workflow job {d.ChildJobId}")}";
        return $"job {r.JobId} ({r.Workflow}): DIVERGED at {where}: {d.What}\n  recorded: {d.Recorded}\n  replayed: {d.Replayed}";
    }

    private static string ToJson(ReplayReport r) => JsonOut.Write(w =>
    {
        w.WriteStartObject();
        w.WriteString("job_id", r.JobId);
        w.WriteString("workflow", r.Workflow);
        w.WriteNumber("replayed_steps", r.ReplayedSteps);
        w.WriteBoolean("diverged", r.Diverged);
        w.WritePropertyName("divergence");
        if (r.Divergence is { } d)
        {
            w.WriteStartObject();
            w.WriteString("step", d.Step);
            w.WriteNumber("visit", d.Visit);
            w.WriteString("what", d.What);
            w.WriteString("recorded", d.Recorded);
            w.WriteString("replayed", d.Replayed);
            JsonOut.WriteNullable(w, "scope", d.Scope);
            JsonOut.WriteNullable(w, "child_job_id", d.ChildJobId);
            w.WriteEndObject();
        }
        else
        {
            w.WriteNullValue();
        }

        w.WriteNumber("answers_served", r.AnswersServed);
        w.WriteBoolean("recording_ended", r.RecordingEnded);
        w.WriteString("recorded_status", r.RecordedStatus);
        w.WriteBoolean("up_to_cancellation", r.UpToCancellation);
        w.WriteEndObject();
    });
}
