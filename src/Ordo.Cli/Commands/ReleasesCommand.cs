using System.CommandLine;
using System.Globalization;
using System.Text;
using Ordo.Cli.Hosting;
using Ordo.Cli.Output;
using Ordo.Releases;

namespace Ordo.Cli.Commands;

/// <summary>
/// <c>ordo releases [NAME]</c>: the release of each workflow of the project (<c>releases:</c> in ordo.yaml): its stable
/// version, its canary (judged now, so a bound passed rolls it back here too) and its shadow jobs compared with production.
/// </summary>
internal static class ReleasesCommand
{
    public static Command Create(CommandEnvironment env)
    {
        var nameArg = new Argument<string?>("workflow") { Description = "Only this workflow's release.", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("releases", "The release state of each workflow: stable version, canary (share, jobs, figures, rolled back or not), shadow comparison.") { nameArg };
        env.SetAction(command, async (ctx, parse) =>
        {
            var config = ctx.Config is { Length: > 0 } c ? c : Workflows.WorkflowLoader.ConfigFileName;
            if (!File.Exists(config)) throw new CliInputException($"releases are configured in the project's ordo.yaml, and there is no {config} here (pass --config FILE)");
            var project = await Workflows.WorkflowLoader.LoadProjectAsync(config, null, ctx.Stop).ConfigureAwait(false);
            CliHost.CheckProject(ctx, project);
            var name = parse.GetValue(nameArg);
            if (name is not null && !project.Releases.ContainsKey(name))
            {
                throw new CliInputException($"{config} has no release of workflow '{name}' (releases: {(project.Releases.Count == 0 ? "none" : string.Join(", ", project.Releases.Keys.Order(StringComparer.Ordinal)))})");
            }

            var code = CliHost.NewRegistry();
            await using var host = await CliHost.OpenAsync(ctx, project, create: true, code).ConfigureAwait(false);
            var reports = new List<ReleaseReport>();
            foreach (var release in project.Releases.Values.Where(r => name is null || r.Workflow == name).OrderBy(r => r.Workflow, StringComparer.Ordinal))
            {
                var versions = (await SubmitCommand.ProjectWorkflowsAsync(ctx, release.Workflow, code).ConfigureAwait(false)).Select(d => d.Version).ToList();
                reports.Add(await ReleaseReport.BuildAsync(host.Store, release, versions, async id => await host.Runtime.GetStateAsync(id, ctx.Stop).ConfigureAwait(false), TimeProvider.System, ctx.Stop).ConfigureAwait(false));
            }

            if (ctx.Json)
            {
                await ctx.Out.WriteLineAsync(JsonOut.Write(w =>
                {
                    w.WriteStartArray();
                    foreach (var r in reports) r.Write(w);
                    w.WriteEndArray();
                })).ConfigureAwait(false);
            }
            else if (ctx.Human)
            {
                await ctx.Out.WriteAsync(Human(reports)).ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static string Human(IReadOnlyList<ReleaseReport> reports)
    {
        var b = new StringBuilder();
        if (reports.Count == 0) b.Append("no releases are configured\n");
        foreach (var r in reports)
        {
            b.Append(CultureInfo.InvariantCulture, $"{r.Workflow}: stable {r.Stable}\n");
            if (r.Canary is { } c)
            {
                var status = c.Status switch
                {
                    "rolled_back" => $"ROLLED BACK at {JsonOut.Timestamp(c.RolledBackAt!.Value)}: {c.Reason}",
                    "inactive" => "inactive (share 0): no job gets it",
                    _ => $"active, share {c.Share:0.###}",
                };
                b.Append(CultureInfo.InvariantCulture, $"  canary {c.Version}: {status}\n");
                b.Append(CultureInfo.InvariantCulture, $"    {c.Jobs} jobs, {c.Finished} finished; failure rate {Rate(c.FailureRate)}, gate rejections {Rate(c.GateRejectionRate)}, cost per job {(c.CostPerJobRatio is { } x ? x.ToString("0.##", CultureInfo.InvariantCulture) + "x stable" : "-")}\n");
            }

            if (r.Shadow is { } s)
            {
                b.Append(CultureInfo.InvariantCulture, $"  shadow {s.Version} (share {s.Share:0.###}): {s.Compared} compared: {s.SameOutcome} same outcome, {s.SameArtifacts} same artifacts, {s.Identical} identical\n");
                foreach (var d in s.Differences)
                {
                    b.Append(CultureInfo.InvariantCulture, $"    job {d.JobId} {d.Outcome} / shadow {d.ShadowJobId} {d.ShadowOutcome}{(d.Artifacts.Count > 0 ? "; artifacts differ: " + string.Join(", ", d.Artifacts) : "")}\n");
                }
            }
        }

        return b.ToString();
    }

    private static string Rate(double? r) => r is { } v ? (v * 100).ToString("0.#", CultureInfo.InvariantCulture) + "%" : "-";
}
