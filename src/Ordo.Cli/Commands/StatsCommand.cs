using System.CommandLine;
using System.Globalization;
using System.Text;
using Ordo.Cli.Hosting;
using Ordo.Cli.Output;
using Ordo.Stats;

namespace Ordo.Cli.Commands;

/// <summary><c>ordo stats [--workflow NAME] [--since 24h]</c>: per workflow version, agent version and prompt hash, from the store's summary rows.</summary>
internal static class StatsCommand
{
    public static Command Create(CommandEnvironment env)
    {
        var workflow = new Option<string?>("--workflow", "-w") { Description = "Only this workflow (by name)." };
        var since = new Option<string?>("--since") { Description = "Jobs created in this window back from now (24h, 7d, 30m) or since this instant (2026-11-22T00:00:00Z). Default: 24h." };
        var tenant = new Option<string?>("--tenant") { Description = "Only this tenant's jobs. Default: every tenant." };
        var command = new Command("stats", "Per workflow version and per agent and prompt hash: success rate, cost per successful job, latency p50/p95, retries, gate rejections, escalations.") { workflow, since, tenant };
        env.SetAction(command, async (ctx, parse) =>
        {
            var now = TimeProvider.System.GetUtcNow();
            var text = parse.GetValue(since);
            if (!StatsWindow.TryParse(text, now, out var from))
            {
                throw new CliInputException("--since: " + StatsWindow.Problem(text));
            }

            var project = await CliHost.StoreProjectAsync(ctx).ConfigureAwait(false);
            await using var host = await CliHost.OpenAsync(ctx, project, create: false, readOnly: true).ConfigureAwait(false);
            var data = await host.Store.ReadStatsAsync(new StatsQuery { Since = from, Workflow = parse.GetValue(workflow), Tenant = parse.GetValue(tenant) }, ctx.Stop).ConfigureAwait(false);
            var report = StatsReport.From(from, data);
            if (ctx.Json)
            {
                await ctx.Out.WriteLineAsync(JsonOut.Write(w => StatsJson.Write(w, report))).ConfigureAwait(false);
            }
            else if (ctx.Human)
            {
                await ctx.Out.WriteAsync(Human(report)).ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    internal static string Human(StatsReport report)
    {
        var b = new StringBuilder();
        b.Append(CultureInfo.InvariantCulture, $"jobs created since {JsonOut.Timestamp(report.Since)}\n");
        if (report.Workflows.Count == 0)
        {
            b.Append("no jobs\n");
            return b.ToString();
        }

        foreach (var v in report.Workflows)
        {
            b.Append(CultureInfo.InvariantCulture, $"\n{v.Workflow}@{v.Version}: {v.Jobs} jobs ({v.Completed} completed, {v.Failed} failed, {v.Cancelled} cancelled)\n");
            b.Append(CultureInfo.InvariantCulture, $"  success rate {Percent(v.SuccessRate)}   cost per success {(v.CostPerSuccess is { } c ? "$" + c.ToString("0.######", CultureInfo.InvariantCulture) : "-")}   tokens {v.Tokens}\n");
            b.Append(CultureInfo.InvariantCulture, $"  latency p50 {Ms(v.LatencyP50Ms)}   p95 {Ms(v.LatencyP95Ms)}   retries per job {v.RetriesPerJob:0.##}   gate rejections {Percent(v.GateRejectionRate)}   escalations {Percent(v.EscalationRate)}\n");
            foreach (var a in v.Agents)
            {
                b.Append(CultureInfo.InvariantCulture, $"  {a.Agent,-24} {(a.PromptHash.Length == 0 ? "(no prompt)" : a.PromptHash[..Math.Min(a.PromptHash.Length, 19)]),-20} {a.Calls,6} calls {a.Failures,5} failed {a.Tokens,9} tokens  ${a.Cost.ToString("0.######", CultureInfo.InvariantCulture)}\n");
            }
        }

        return b.ToString();
    }

    private static string Percent(double? rate) => rate is { } r ? (r * 100).ToString("0.#", CultureInfo.InvariantCulture) + "%" : "-";

    private static string Ms(double? ms) => ms is { } v ? HumanOut.Ms(v) : "-";
}
