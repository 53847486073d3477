using System.CommandLine;
using System.Text.Json.Nodes;
using Ordo.Cli.Bench;
using Ordo.Cli.Output;

namespace Ordo.Cli.Commands;

/// <summary>
/// <c>ordo bench</c>: the reference workloads W1–W5 (defined in <c>peer/langgraph/README.md</c>), optionally side by side
/// with the LangGraph.js peer harness run in the same invocation (<c>--peer DIR</c>).
/// </summary>
internal static class BenchCommand
{
    public static Command Create(CommandEnvironment env)
    {
        var workload = new Option<string[]>("--workload", "-w")
        {
            Description = "Only these workloads: w1, w2, w3, w4, w5, patterns, models (comma-separated or repeated). Default: all.",
            HelpName = "w1,w3",
        };
        var quick = new Option<bool>("--quick") { Description = "About 5x smaller sizes, like the peer's --quick: a smoke run, not for comparison." };
        var peer = new Option<string?>("--peer") { Description = "Also run the LangGraph.js peer harness in this directory (peer/langgraph) and print both sides with ratios.", HelpName = "DIR" };
        var peerCache = new Option<string?>("--peer-cache") { Description = "Where the peer harness is copied and its packages installed. Default: ~/.cache/ordo/peer-langgraph.", HelpName = "DIR" };
        var w3Workers = new Option<int?>("--w3-workers") { Description = $"Workers of the W3 runtime. Default: {BenchSettings.DefaultW3Workers}.", HelpName = "N" };
        var command = new Command("bench", "Run the benchmark workloads W1-W5; JSON on stdout with --json, progress on stderr.")
        {
            workload, quick, peer, peerCache, w3Workers,
        };
        env.SetAction(command, async (ctx, parse) =>
        {
            var settings = new BenchSettings
            {
                Quick = parse.GetValue(quick),
                Workloads = BenchSettings.ParseWorkloads(parse.GetValue(workload)),
                W3Workers = parse.GetValue(w3Workers),
            };
            if (settings.W3Workers is < 1) throw new CliInputException("--w3-workers must be at least 1");
            var peerDir = parse.GetValue(peer) is { } p ? PeerHarness.Validate(p) : null;
            var progress = ctx.Quiet ? null : TextWriter.Synchronized(ctx.Err);

            var ordo = await new OrdoBench(settings, progress).RunAsync(ctx.Stop).ConfigureAwait(false);
            JsonObject? peerResult = null;
            if (peerDir is not null)
            {
                try
                {
                    peerResult = await PeerHarness.RunAsync(peerDir, Path.GetFullPath(parse.GetValue(peerCache) ?? PeerHarness.DefaultCacheDirectory), settings, progress, ctx.Stop).ConfigureAwait(false);
                }
                catch (BenchFailedException e)
                {
                    await ctx.Err.WriteLineAsync($"ordo: bench: the peer harness failed: {e.Message}").ConfigureAwait(false);
                    peerResult = new JsonObject { ["errors"] = new JsonObject { ["harness"] = e.Message } };
                }
            }

            if (ctx.Json)
            {
                var result = peerResult is null ? ordo : BenchReport.Combine(ordo, peerResult);
                await ctx.Out.WriteLineAsync(JsonOut.Write(w => result.WriteTo(w), indented: true)).ConfigureAwait(false);
            }
            else if (!ctx.Quiet)
            {
                BenchReport.WriteHuman(ctx.Out, ordo, peerResult);
            }

            var failed = false;
            foreach (var (side, obj) in new[] { ("ordo", ordo), ("peer", peerResult) })
            {
                if (obj?["errors"] is JsonObject errors)
                {
                    foreach (var (w, e) in errors)
                    {
                        failed = true;
                        await ctx.Err.WriteLineAsync($"ordo: bench: {side} {w} failed: {e?.ToString().Split('\n')[0]}").ConfigureAwait(false);
                    }
                }
            }

            return failed ? ExitCodes.InternalError : ExitCodes.Ok;
        });
        return command;
    }
}
