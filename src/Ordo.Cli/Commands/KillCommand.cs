using System.CommandLine;
using Ordo.Cli.Hosting;
using Ordo.Cli.Output;
using Ordo.KillSwitches;

namespace Ordo.Cli.Commands;

/// <summary><c>ordo kill set|clear TARGET</c> and <c>ordo kill list</c>: kill switches for tools, agents, step kinds and workflows.</summary>
internal static class KillCommand
{
    public static Command Create(CommandEnvironment env)
    {
        var setTarget = new Argument<string>("target") { Description = "tool:NAME, agent:NAME, workflow:NAME or step:KIND; * matches any characters (tool:web.*)." };
        var reason = new Option<string?>("--reason") { Description = "Why (shown in every event it causes)." };
        var setTenant = new Option<string?>("--tenant") { Description = "Stop only this tenant's jobs. Default: every tenant's." };
        var set = new Command("set", "Set a kill switch: every worker honours it at its next step or tool call.") { setTarget, reason, setTenant };
        env.SetAction(set, async (ctx, parse) =>
        {
            var target = Parse(parse.GetValue(setTarget));
            await using var host = await OpenAsync(ctx, create: true).ConfigureAwait(false);
            await host.Store.SetKillSwitchAsync(new KillSwitch(target.ToString(), parse.GetValue(reason), ctx.Identity, TimeProvider.System.GetUtcNow(), Tenant(parse.GetValue(setTenant))), ctx.Stop).ConfigureAwait(false);
            if (ctx.Human) await ctx.Out.WriteLineAsync($"kill switch {target} set{For(parse.GetValue(setTenant))}").ConfigureAwait(false);
            else if (ctx.Json) await ctx.Out.WriteLineAsync(JsonOut.Write(w => { w.WriteStartObject(); w.WriteString("target", target.ToString()); w.WriteBoolean("set", true); w.WriteEndObject(); })).ConfigureAwait(false);
            return ExitCodes.Ok;
        });

        var clearTarget = new Argument<string>("target") { Description = "The switch to clear, as it was set." };
        var clearTenant = new Option<string?>("--tenant") { Description = "Clear the switch set for this tenant only. Default: the one of every tenant." };
        var clear = new Command("clear", "Clear a kill switch.") { clearTarget, clearTenant };
        env.SetAction(clear, async (ctx, parse) =>
        {
            var target = Parse(parse.GetValue(clearTarget));
            await using var host = await OpenAsync(ctx, create: false).ConfigureAwait(false);
            var tenant = Tenant(parse.GetValue(clearTenant));
            var cleared = await host.Store.ClearKillSwitchAsync(target.ToString(), tenant, ctx.Stop).ConfigureAwait(false);
            if (ctx.Human) await ctx.Out.WriteLineAsync(cleared ? $"kill switch {target}{For(tenant)} cleared" : $"kill switch {target}{For(tenant)} was not set").ConfigureAwait(false);
            else if (ctx.Json) await ctx.Out.WriteLineAsync(JsonOut.Write(w => { w.WriteStartObject(); w.WriteString("target", target.ToString()); w.WriteBoolean("cleared", cleared); w.WriteEndObject(); })).ConfigureAwait(false);
            return ExitCodes.Ok;
        });

        var list = new Command("list", "List the kill switches that are set.");
        env.SetAction(list, async (ctx, parse) =>
        {
            await using var host = await OpenAsync(ctx, create: false, readOnly: true).ConfigureAwait(false);
            var switches = await host.Store.ListKillSwitchesAsync(ctx.Stop).ConfigureAwait(false);
            if (ctx.Json)
            {
                await ctx.Out.WriteLineAsync(JsonOut.Write(w =>
                {
                    w.WriteStartArray();
                    foreach (var s in switches)
                    {
                        w.WriteStartObject();
                        w.WriteString("target", s.Target);
                        JsonOut.WriteNullable(w, "reason", s.Reason);
                        w.WriteString("set_by", s.SetBy);
                        w.WriteString("set_at", JsonOut.Timestamp(s.SetAt));
                        JsonOut.WriteNullable(w, "tenant", s.Tenant);
                        w.WriteEndObject();
                    }

                    w.WriteEndArray();
                })).ConfigureAwait(false);
            }
            else if (!ctx.Quiet)
            {
                if (switches.Count == 0) await ctx.Out.WriteLineAsync("no kill switches are set").ConfigureAwait(false);
                foreach (var s in switches)
                {
                    await ctx.Out.WriteLineAsync($"{s.Target,-32}  {(s.Tenant is null ? "all tenants" : "tenant " + s.Tenant),-20}  set by {s.SetBy} at {JsonOut.Timestamp(s.SetAt)}{(s.Reason is null ? "" : $"  ({s.Reason})")}").ConfigureAwait(false);
                }
            }

            return ExitCodes.Ok;
        });

        return new Command("kill", "Kill switches: disable a tool, agent, step kind or workflow at run time, for every worker at once.") { set, clear, list };
    }

    private static string? Tenant(string? text) => text is null ? null
        : string.IsNullOrWhiteSpace(text) ? throw new CliInputException("--tenant needs a tenant name") : text.Trim();

    private static string For(string? tenant) => tenant is null ? "" : $" for tenant {tenant}";

    private static KillSwitchTarget Parse(string? text)
        => KillSwitchTarget.TryParse(text, out var target)
            ? target
            : throw new CliInputException($"'{text}' is not a kill switch target (tool:NAME, agent:NAME, workflow:NAME or step:KIND; * matches any characters)");

    /// <summary>Opens the store; only <c>kill set</c> creates a database that does not exist (a switch can be set before any job runs).</summary>
    private static async Task<CliHost> OpenAsync(CliContext ctx, bool create, bool readOnly = false)
    {
        var project = await CliHost.StoreProjectAsync(ctx).ConfigureAwait(false);
        return await CliHost.OpenAsync(ctx, project, create, readOnly: readOnly).ConfigureAwait(false);
    }
}
