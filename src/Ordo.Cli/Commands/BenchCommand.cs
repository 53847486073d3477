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
            Description = "Only these workloads: w1, w2, w3, w4, w5, patterns, models, server, audit, stats (comma-separated or repeated). Default: all but server, audit and stats.",
            HelpName = "w1,w3",
        };
        var quick = new Option<bool>("--quick") { Description = "About 5x smaller sizes, like the peer's --quick: a smoke run, not for comparison." };
        var peer = new Option<string?>("--peer") { Description = "Also run the LangGraph.js peer harness in this directory (peer/langgraph) and print both sides with ratios.", HelpName = "DIR" };
        var peerCache = new Option<string?>("--peer-cache") { Description = "Where the peer harness is copied and its packages installed. Default: ~/.cache/ordo/peer-langgraph.", HelpName = "DIR" };
        var w3Workers = new Option<int?>("--w3-workers") { Description = $"Workers of the W3 runtime. Default: {BenchSettings.DefaultW3Workers}.", HelpName = "N" };
        var server = new Option<bool>("--server") { Description = "Load-test ordo serve instead: N clients submit jobs over HTTP on loopback for --duration, then every accepted job must be completed (the 'server' workload)." };
        var duration = new Option<double?>("--duration") { Description = $"Seconds the server workload submits jobs. Default: {BenchSettings.DefaultServerDuration.TotalSeconds:0}, {BenchSettings.QuickServerDuration.TotalSeconds:0} with --quick.", HelpName = "SECONDS" };
        var clients = new Option<int?>("--clients") { Description = $"Concurrent HTTP clients of the server workload. Default: {BenchSettings.DefaultServerClients}.", HelpName = "N" };
        var serverWorkers = new Option<int?>("--server-workers") { Description = "Workers of the server under load. Default: ordo serve's (the number of cores).", HelpName = "N" };
        var command = new Command("bench", "Run the benchmark workloads W1-W5, or with --server a load test of the HTTP API; JSON on stdout with --json, progress on stderr.")
        {
            workload, quick, peer, peerCache, w3Workers, server, duration, clients, serverWorkers,
        };
        env.SetAction(command, async (ctx, parse) =>
        {
            var named = parse.GetValue(workload) ?? [];
            if (parse.GetValue(server)) named = named.Length == 0 ? ["server"] : [.. named, "server"];
            var settings = new BenchSettings
            {
                Quick = parse.GetValue(quick),
                Workloads = BenchSettings.ParseWorkloads(named),
                W3Workers = parse.GetValue(w3Workers),
                ServerDuration = parse.GetValue(duration) is { } d ? TimeSpan.FromSeconds(d) : null,
                ServerClients = parse.GetValue(clients),
                ServerWorkers = parse.GetValue(serverWorkers),
            };
            if (settings.W3Workers is < 1) throw new CliInputException("--w3-workers must be at least 1");
            if (settings.ServerDuration is { } sd && (sd <= TimeSpan.Zero || sd > TimeSpan.FromHours(24))) throw new CliInputException("--duration must be more than 0 and at most 86400 seconds");
            if (settings.ServerClients is < 1 or > 4096) throw new CliInputException("--clients must be between 1 and 4096");
            if (settings.ServerWorkers is < 1) throw new CliInputException("--server-workers must be at least 1");
            if (settings.Workloads.Contains("server") && parse.GetValue(peer) is not null) throw new CliInputException("--peer has no server workload: run --server on its own");
            var peerDir = parse.GetValue(peer) is { } p ? PeerHarness.Validate(p) : null;
            var progress = ctx.Quiet ? null : TextWriter.Synchronized(ctx.Err);

            var bench = new OrdoBench(settings, progress);
            var ordo = await bench.RunAsync(ctx.Stop).ConfigureAwait(false);
            // With --postgres (or ORDO_POSTGRES): the workloads again on PostgreSQL, in-process and with 1-3 worker processes.
            var postgres = !string.IsNullOrWhiteSpace(ctx.Postgres) ? ctx.Postgres : ctx.PostgresEnv;
            if (!string.IsNullOrWhiteSpace(postgres) && !settings.Workloads.Contains("server"))
            {
                ordo["postgres"] = await bench.PostgresAsync(postgres, ctx.Stop).ConfigureAwait(false);
            }

            JsonObject? peerResult = null;
            JsonObject? peerPostgres = null;
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

                if (ordo["postgres"] is not null)
                {
                    try
                    {
                        peerPostgres = await PeerHarness.RunAsync(peerDir, Path.GetFullPath(parse.GetValue(peerCache) ?? PeerHarness.DefaultCacheDirectory), settings, progress, ctx.Stop, PeerHarness.PostgresUrl(postgres!)).ConfigureAwait(false);
                    }
                    catch (BenchFailedException e)
                    {
                        await ctx.Err.WriteLineAsync($"ordo: bench: the peer harness on PostgreSQL failed: {e.Message}").ConfigureAwait(false);
                        peerPostgres = new JsonObject { ["errors"] = new JsonObject { ["harness"] = e.Message } };
                    }
                }
            }

            if (ordo["postgres"] is JsonObject pgResult) BenchReport.AddPostgresComparison(pgResult, peerPostgres);

            if (ctx.Json)
            {
                var result = peerResult is null ? ordo : BenchReport.Combine(ordo, peerResult);
                await ctx.Out.WriteLineAsync(JsonOut.Write(w => result.WriteTo(w), indented: true)).ConfigureAwait(false);
            }
            else if (!ctx.Quiet)
            {
                BenchReport.WriteHuman(ctx.Out, ordo, peerResult);
                if (ordo["postgres"] is JsonObject pg) BenchReport.WritePostgres(ctx.Out, pg);
            }

            var failed = false;
            foreach (var (side, obj) in new[] { ("ordo", ordo), ("peer", peerResult), ("ordo postgres", ordo["postgres"] as JsonObject), ("peer postgres", peerPostgres) })
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
