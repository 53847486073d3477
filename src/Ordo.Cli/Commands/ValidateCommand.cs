using System.CommandLine;
using Ordo.Cli.Hosting;
using Ordo.Cli.Output;

namespace Ordo.Cli.Commands;

/// <summary><c>ordo validate WORKFLOW.yaml</c>: check a workflow and the files it names; no job is created.</summary>
internal static class ValidateCommand
{
    public static Command Create(CommandEnvironment env)
    {
        var workflow = new Argument<string>("workflow") { Description = "The workflow file." };
        var input = new Option<string?>("--input", "-i") { Description = "Also check a job input against the workflow's input schema." };
        var command = new Command("validate", "Check a workflow and the files it names; no job is created.") { workflow, input };
        env.SetAction(command, async (ctx, parse) =>
        {
            var definition = await CliHost.LoadWorkflowAsync(ctx, parse.GetValue(workflow)!, CliHost.NewRegistry()).ConfigureAwait(false);
            CliHost.CheckProject(ctx, definition.Project, [definition]);
            if (parse.GetValue(input) is { } inputPath)
            {
                CliHost.ValidateInput(definition, await CliHost.ReadInputAsync(inputPath, ctx.Stop).ConfigureAwait(false));
            }

            if (ctx.Json)
            {
                await ctx.Out.WriteLineAsync(JsonOut.Write(w =>
                {
                    w.WriteStartObject();
                    w.WriteBoolean("valid", true);
                    w.WriteString("workflow", definition.Ref);
                    w.WriteString("definition_hash", definition.Hash);
                    w.WriteNumber("steps", definition.Steps.Count);
                    w.WriteNumber("agents", definition.Agents.Count);
                    w.WriteNumber("tools", definition.Project.Tools.Count);
                    w.WriteEndObject();
                })).ConfigureAwait(false);
            }
            else if (!ctx.Quiet)
            {
                await ctx.Out.WriteLineAsync($"ok: {definition.Ref} — {definition.Steps.Count} steps, {definition.Agents.Count} agents, {definition.Artifacts.Count} artifact types, {definition.Project.Tools.Count} tools ({definition.Hash})").ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        });
        return command;
    }
}
