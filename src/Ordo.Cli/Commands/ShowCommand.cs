using System.CommandLine;
using System.Text.Json;
using Ordo.Cli.Hosting;
using Ordo.Cli.Output;
using Ordo.State;
using Ordo.Events;

namespace Ordo.Cli.Commands;

/// <summary><c>ordo show JOB_ID</c>: a job's timeline: steps, attempts, durations, artifacts, tool calls, tokens, cost.</summary>
internal static class ShowCommand
{
    public static Command Create(CommandEnvironment env)
    {
        var jobArg = new Argument<string>("job") { Description = "The job id." };
        var command = new Command("show", "Show a job's timeline: steps, attempts, durations, artifacts, tool and model calls, tokens, cost.") { jobArg };
        env.SetAction(command, async (ctx, parse) =>
        {
            var id = CliHost.ParseJobId(parse.GetValue(jobArg));
            var project = ctx.ResolveConfigPath() is { } config ? await Workflows.WorkflowLoader.LoadProjectAsync(config, null, ctx.Stop).ConfigureAwait(false) : null;
            await using var host = await CliHost.OpenAsync(ctx, project, create: false).ConfigureAwait(false);
            var record = await host.GetJobAsync(id, ctx.Stop).ConfigureAwait(false);
            var state = await host.Runtime.GetStateAsync(id, ctx.Stop).ConfigureAwait(false) ?? throw new CliInputException($"job {id} has no events");
            var definition = await ResumeCommand.TryDefinitionAsync(host, state).ConfigureAwait(false);
            var events = new List<EventEnvelope>();
            await foreach (var e in host.Store.ReadEventsAsync(id, 0, ctx.Stop).ConfigureAwait(false)) events.Add(e);
            var children = await host.Store.ListJobsAsync(new Storage.JobQuery { ParentJobId = id, Limit = 1000 }, ctx.Stop).ConfigureAwait(false);

            if (ctx.Json)
            {
                await ctx.Out.WriteLineAsync(JsonOut.Write(w =>
                {
                    using var run = JsonDocument.Parse(JsonOut.Write(x => JobView.WriteRunJson(x, state, definition, host.DatabasePath)));
                    w.WriteStartObject();
                    foreach (var p in run.RootElement.EnumerateObject()) p.WriteTo(w);
                    w.WriteString("tenant", record.Tenant);
                    w.WriteString("submitter", record.Submitter);
                    w.WriteString("created_at", JsonOut.Timestamp(record.CreatedAt));
                    w.WriteString("updated_at", JsonOut.Timestamp(record.UpdatedAt));
                    JsonOut.WriteNullable(w, "parent_job_id", record.ParentJobId?.Value);
                    w.WriteStartArray("children");
                    foreach (var c in children) JobView.WriteJobRecord(w, c);
                    w.WriteEndArray();
                    w.WriteString("definition_hash", record.DefinitionHash);
                    w.WriteStartArray("tool_calls");
                    foreach (var e in events.Where(e => e.Type is EventTypes.ToolCallSucceeded or EventTypes.ToolCallFailed)) Timeline(w, e);
                    w.WriteEndArray();
                    w.WriteStartArray("model_calls");
                    foreach (var e in events.Where(e => e.Type is EventTypes.ModelCallSucceeded or EventTypes.ModelCallFailed)) Timeline(w, e);
                    w.WriteEndArray();
                    w.WriteStartArray("policy_decisions");
                    foreach (var e in events.Where(e => e.Type is EventTypes.PolicyDecision)) Timeline(w, e);
                    w.WriteEndArray();
                    w.WriteStartArray("timeline");
                    foreach (var e in events) Timeline(w, e);
                    w.WriteEndArray();
                    w.WriteEndObject();
                })).ConfigureAwait(false);
                return ExitCodes.Ok;
            }

            if (ctx.Quiet) return ExitCodes.Ok;
            HumanOut.WriteSummary(ctx.Out, state, definition, host.DatabasePath);
            if (record.ParentJobId is { } parent) await ctx.Out.WriteLineAsync($"  parent job: {parent}").ConfigureAwait(false);
            foreach (var c in children) await ctx.Out.WriteLineAsync($"  child job: {c.JobId}  {c.WorkflowRef}  {c.Status.ToWire()}").ConfigureAwait(false);
            await ctx.Out.WriteLineAsync().ConfigureAwait(false);
            await ctx.Out.WriteLineAsync("  timeline").ConfigureAwait(false);
            foreach (var e in events)
            {
                await ctx.Out.WriteLineAsync("  " + EventsCommand.HumanLine(e, state.CreatedAt)).ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static void Timeline(Utf8JsonWriter w, EventEnvelope e)
    {
        w.WriteStartObject();
        w.WriteNumber("seq", e.Seq);
        w.WriteString("type", e.Type);
        w.WriteString("ts", JsonOut.Timestamp(e.Timestamp));
        JsonOut.WriteNullable(w, "step_id", e.StepId);
        if (e.Visit is { } v) w.WriteNumber("visit", v);
        if (e.Attempt is { } a) w.WriteNumber("attempt", a);
        if (e.Agent is { } ag) w.WriteString("agent", ag);
        if (e.Model is { } m) w.WriteString("model", m);
        if (e.PromptHash is { } ph) w.WriteString("prompt_hash", ph);
        w.WritePropertyName("payload");
        using (var doc = JsonDocument.Parse(e.Payload)) doc.RootElement.WriteTo(w);
        w.WriteEndObject();
    }
}
