using System.CommandLine;
using System.Globalization;
using Ordo.Cli.Hosting;
using Ordo.Cli.Output;
using Ordo.Engine;
using Ordo.Releases;
using Ordo.Workflows;

namespace Ordo.Cli.Commands;

/// <summary>
/// <c>ordo submit WORKFLOW.yaml</c> or <c>ordo submit --workflow NAME[@V]</c>: enqueue a job without running it. By name,
/// the version comes from the project's workflows and its release (stable, canary by a stable hash of the job id), and a
/// shadow job is submitted beside it when the release has a shadow.
/// </summary>
internal static class SubmitCommand
{
    public static Command Create(CommandEnvironment env)
    {
        var workflow = new Argument<string?>("workflow") { Description = "The workflow file.", Arity = ArgumentArity.ZeroOrOne };
        var byName = new Option<string?>("--workflow", "-w") { Description = "Submit by name (NAME or NAME@VERSION) among the project's workflows; by NAME alone the release decides the version." };
        var input = new Option<string?>("--input", "-i") { Description = "The job input: a JSON file, or - for stdin. Default: {}." };
        var tenant = new Option<string>("--tenant") { Description = "The tenant.", DefaultValueFactory = _ => "default" };
        var priority = new Option<int>("--priority") { Description = "Higher runs first. Default: 0." };
        var dryRun = CommonOptions.DryRunJob();
        var command = new Command("submit", "Enqueue a job without running it (for ordo resume, workers or a server); prints its id.") { workflow, byName, input, tenant, priority, dryRun };
        env.SetAction(command, async (ctx, parse) =>
        {
            var file = parse.GetValue(workflow);
            var name = parse.GetValue(byName);
            if ((file is null) == (name is null))
            {
                throw new CliInputException((file is null ? "name a workflow file, or --workflow NAME[@VERSION]" : "give either a workflow file or --workflow NAME, not both")
                    + "\nRun 'ordo submit --help' for usage.");
            }

            var code = CliHost.NewRegistry();
            var value = await CliHost.ReadInputAsync(parse.GetValue(input), ctx.Stop).ConfigureAwait(false);
            IReadOnlyList<WorkflowDefinition> candidates = file is not null
                ? [await CliHost.LoadWorkflowAsync(ctx, file, code).ConfigureAwait(false)]
                : await ProjectWorkflowsAsync(ctx, name!, code).ConfigureAwait(false);
            var definition = candidates[0];
            CliHost.CheckProject(ctx, definition.Project, candidates);
            var release = name is not null && !name.Contains('@', StringComparison.Ordinal) && definition.Project.Releases.TryGetValue(definition.Name, out var r) ? r : null;

            // The input is checked before the store is opened (a bad input creates nothing): against each version the job may get.
            var versions = candidates.Select(c => c.Version).ToList();
            foreach (var possible in release is null ? [definition] : candidates.Where(c => c.Version == ReleaseRouter.StableVersion(release, versions) || c.Version == release.Canary?.Version))
            {
                CliHost.ValidateInput(possible, value);
            }

            await using var host = await CliHost.OpenAsync(ctx, definition.Project, create: true, code).ConfigureAwait(false);
            var jobId = JobId.New(TimeProvider.System.GetUtcNow());
            int? shadowVersion = null;
            if (release is not null)
            {
                var choice = await ReleaseRouter.ChooseAsync(host.Store, release, versions, jobId, TimeProvider.System, ctx.Stop).ConfigureAwait(false);
                definition = candidates.First(c => c.Version == choice.Version);
                shadowVersion = choice.ShadowVersion;
            }

            var job = await host.Runtime.SubmitAsync(definition, value.Value, new SubmitOptions
            {
                Tenant = parse.GetValue(tenant)!, Submitter = ctx.Identity, Priority = parse.GetValue(priority), InputName = value.Name, DryRun = parse.GetValue(dryRun), JobId = jobId,
            }, ctx.Stop).ConfigureAwait(false);
            if (shadowVersion is { } sv && !parse.GetValue(dryRun))
            {
                var shadow = candidates.First(c => c.Version == sv);
                if (shadow.InputSchema?.Validate(value.Value) is not { Count: > 0 })
                {
                    await host.Runtime.SubmitAsync(shadow, value.Value, new SubmitOptions
                    {
                        Tenant = parse.GetValue(tenant)!, Submitter = ctx.Identity, Priority = parse.GetValue(priority), InputName = value.Name, DryRun = true, ShadowOf = job.JobId,
                    }, ctx.Stop).ConfigureAwait(false);
                }
            }

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

    /// <summary>
    /// The project's workflows of a name (<c>NAME</c>: every version, highest first; <c>NAME@V</c>: that one), from the
    /// config's folder and its <c>workflows:</c> folders.
    /// </summary>
    internal static async Task<IReadOnlyList<WorkflowDefinition>> ProjectWorkflowsAsync(CliContext ctx, string reference, Agents.CodeRegistry code)
    {
        var at = reference.LastIndexOf('@');
        var name = at > 0 ? reference[..at] : reference;
        int? version = null;
        if (at > 0)
        {
            if (!int.TryParse(reference[(at + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var v) || v < 1)
            {
                throw new CliInputException($"--workflow: '{reference}' is not NAME or NAME@VERSION (a whole number)");
            }

            version = v;
        }

        var config = ctx.Config is { Length: > 0 } c ? c : WorkflowLoader.ConfigFileName;
        if (!File.Exists(config))
        {
            throw new CliInputException($"--workflow {reference}: submitting by name reads the project's workflows, and there is no {config} here (pass --config FILE)");
        }

        var project = await WorkflowLoader.LoadProjectAsync(config, null, ctx.Stop).ConfigureAwait(false);
        var found = new List<WorkflowDefinition>();
        foreach (var f in ServeCommand.WorkflowFiles(ctx, project))
        {
            // Only the files of this workflow are loaded (and so checked): a broken file of another workflow is no concern
            // here. Its name is read as the project's checks read it (a comment after 'workflow:' included), or from the
            // line itself when the file does not read as a workflow (its load then says why).
            if (WorkflowOutline.Read(f)?.Name != name
                && !File.ReadLines(f).Any(l => l.Trim() is var t && (t == $"workflow: {name}" || t == $"workflow: \"{name}\"" || t == $"workflow: '{name}'"))) continue;
            var definition = await CliHost.LoadWorkflowAsync(ctx, f, code).ConfigureAwait(false);
            if (definition.Name == name && (version is null || definition.Version == version)) found.Add(definition);
        }

        if (found.Count == 0)
        {
            throw new CliInputException($"--workflow: the project of {config} has no workflow '{reference}'");
        }

        return [.. found.DistinctBy(d => d.Version).OrderByDescending(d => d.Version)];
    }
}
