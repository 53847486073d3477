using System.CommandLine;
using Ordo.Cli.Hosting;
using Ordo.Events;
using Ordo.Graphs;

namespace Ordo.Cli.Commands;

/// <summary>
/// <c>ordo graph WORKFLOW.yaml [--format mermaid|dot|svg] [--job JOB_ID] [--out FILE]</c>: draws the workflow's graph;
/// with <c>--job</c>, on the definition that job is pinned to, the path it took and each step's status.
/// </summary>
internal static class GraphCommand
{
    public static Command Create(CommandEnvironment env)
    {
        var workflow = new Argument<string>("workflow") { Description = "The workflow file." };
        var format = new Option<string>("--format", "-f") { Description = "mermaid (default), dot or svg.", DefaultValueFactory = _ => "mermaid" };
        var job = new Option<string?>("--job") { Description = "Draw the path this job took and each step's status (the job must be of this workflow)." };
        var output = new Option<string?>("--out", "-o") { Description = "Write the drawing to this file instead of standard output." };
        var command = new Command("graph", "Draw a workflow's graph: steps, routes with their conditions, patterns, loops; with --job, the path that job took and each step's status.")
        {
            workflow, format, job, output,
        };
        env.SetAction(command, async (ctx, parse) =>
        {
            if (!GraphRenderer.TryParseFormat(parse.GetValue(format), out var drawing))
            {
                throw new CliInputException($"--format: '{parse.GetValue(format)}' is not a graph format (mermaid, dot or svg)");
            }

            var definition = await CliHost.LoadWorkflowAsync(ctx, parse.GetValue(workflow)!, CliHost.NewRegistry()).ConfigureAwait(false);
            string text;
            if (parse.GetValue(job) is { } jobText)
            {
                var id = CliHost.ParseJobId(jobText);
                await using var host = await CliHost.OpenAsync(ctx, definition.Project, create: false, readOnly: true).ConfigureAwait(false);
                _ = await host.GetJobAsync(id, ctx.Stop).ConfigureAwait(false);
                var state = await host.Runtime.GetStateAsync(id, ctx.Stop).ConfigureAwait(false) ?? throw new CliInputException($"job {id} has no events");
                if (!string.Equals(state.Workflow, definition.Name, StringComparison.Ordinal))
                {
                    throw new CliInputException($"job {id} is a job of workflow {state.Workflow}@{state.Version}, not of {definition.Ref} ({parse.GetValue(workflow)}); pass the file of {state.Workflow}");
                }

                // The job is drawn on the definition it is pinned to, whatever the file says now.
                var pinned = await ResumeCommand.TryDefinitionAsync(host, state).ConfigureAwait(false)
                    ?? (definition.Version == state.Version ? definition : throw new CliInputException($"job {id}'s definition ({state.DefinitionHash}) cannot be read from {host.DatabasePath}"));
                var events = new List<EventEnvelope>();
                await foreach (var e in host.Store.ReadEventsAsync(id, 0, ctx.Stop).ConfigureAwait(false)) events.Add(e);
                var graph = WorkflowGraph.From(pinned);
                text = GraphRenderer.Render(graph, drawing, JobGraphOverlay.From(graph, pinned, state, events));
            }
            else
            {
                text = GraphRenderer.Render(WorkflowGraph.From(definition), drawing);
            }

            if (parse.GetValue(output) is { } path)
            {
                // Never the store's database (that of --db, ORDO_DB or the project), nor a file that is not a drawing.
                var target = OutputFile.Check(path, ctx.ResolvePostgres(definition.Project) is null ? ctx.ResolveDbPath(definition.Project) : null, "a drawing", IsDrawing);
                try
                {
                    await File.WriteAllTextAsync(target, text, ctx.Stop).ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new CliInputException($"--out: {path} cannot be written: {e.Message}");
                }

                if (!ctx.Quiet) await ctx.Out.WriteLineAsync($"wrote {path}").ConfigureAwait(false);
            }
            else
            {
                await ctx.Out.WriteAsync(text).ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>Whether a file starts as a drawing of <c>ordo graph</c> does (Mermaid, DOT or SVG).</summary>
    private static bool IsDrawing(ReadOnlySpan<byte> head)
        => head.StartsWith("flowchart "u8) || head.StartsWith("digraph "u8) || head.StartsWith("<svg "u8);
}
