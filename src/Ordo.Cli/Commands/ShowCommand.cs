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
            var project = await CliHost.StoreProjectAsync(ctx).ConfigureAwait(false);
            await using var host = await CliHost.OpenAsync(ctx, project, create: false, readOnly: true).ConfigureAwait(false);
            var record = await host.GetJobAsync(id, ctx.Stop).ConfigureAwait(false);
            var state = await host.Runtime.GetStateAsync(id, ctx.Stop).ConfigureAwait(false) ?? throw new CliInputException($"job {id} has no events");
            var definition = await ResumeCommand.TryDefinitionAsync(host, state).ConfigureAwait(false);
            var events = new List<EventEnvelope>();
            await foreach (var e in host.Store.ReadEventsAsync(id, 0, ctx.Stop).ConfigureAwait(false)) events.Add(e);
            var children = await host.Store.ListJobsAsync(new Storage.JobQuery { ParentJobId = id, Limit = 10_000 }, ctx.Stop).ConfigureAwait(false);
            var branches = JobView.ChildBranches(state);
            var waitingIn = await JobTree.WaitingUnderAsync(host, state).ConfigureAwait(false);
            children = [.. children.OrderBy(c => branches.TryGetValue(c.JobId.Value, out var b) ? b.Scope : "\uffff", ScopeComparer.Instance).ThenBy(c => c.CreatedAt)];

            if (ctx.Json)
            {
                await ctx.Out.WriteLineAsync(JsonOut.Write(w =>
                {
                    using var run = JsonDocument.Parse(JsonOut.Write(x => JobView.WriteRunJson(x, state, definition, host.DatabasePath, waitingIn)));
                    w.WriteStartObject();
                    foreach (var p in run.RootElement.EnumerateObject()) p.WriteTo(w);
                    w.WriteString("tenant", record.Tenant);
                    w.WriteString("submitter", record.Submitter);
                    w.WriteString("created_at", JsonOut.Timestamp(record.CreatedAt));
                    w.WriteString("updated_at", JsonOut.Timestamp(record.UpdatedAt));
                    JsonOut.WriteNullable(w, "parent_job_id", record.ParentJobId?.Value);
                    JsonOut.WriteNullable(w, "parent_branch", state.ParentBranch);
                    w.WriteString("root_job_id", record.RootJobId.Value);
                    w.WriteStartArray("children");
                    foreach (var c in children)
                    {
                        // The jobs/submit shape plus the branch (scope) and the coordinating step that started the child.
                        w.WriteStartObject();
                        JobView.WriteJobRecordFields(w, c);
                        var started = branches.TryGetValue(c.JobId.Value, out var b) ? b : default;
                        JsonOut.WriteNullable(w, "branch", started.Scope);
                        JsonOut.WriteNullable(w, "step", started.Step);
                        w.WriteEndObject();
                    }

                    w.WriteEndArray();
                    JobView.WritePatterns(w, state, definition);
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
            var related = new List<string>();
            if (state.ShadowOf is { } production)
            {
                related.Add($"  shadow of job: {production}  (a dry run of the release's shadow version on the same input)");
            }

            if (record.ParentJobId is { } parent)
            {
                related.Add($"  parent job: {parent}{(state.ParentBranch is { } pb ? $"  branch [{pb}]" : "")}{(record.RootJobId != parent ? $"  root job: {record.RootJobId}" : "")}");
            }

            if (children.Count > 0)
            {
                related.Add("");
                related.Add($"  child jobs ({children.Count})");
                var width = children.Max(c => c.WorkflowRef.Length);
                foreach (var c in children)
                {
                    var from = branches.TryGetValue(c.JobId.Value, out var b) ? $"  from {b.Step} [{b.Scope}]" : "";
                    related.Add($"  child job: {c.JobId}  {c.WorkflowRef.PadRight(width)}  {c.Status.ToWire(),-16}{from}{(c.Reason is { } r ? $"  — {r}" : "")}");
                }
            }

            HumanOut.WriteSummary(ctx.Out, state, definition, host.DatabasePath, related);
            HumanOut.WriteWaitingIn(ctx.Out, state, waitingIn, host.DatabasePath);
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
        if (e.Scope is { } scope) w.WriteString("scope", scope);
        if (e.Visit is { } v) w.WriteNumber("visit", v);
        if (e.Attempt is { } a) w.WriteNumber("attempt", a);
        if (e.Agent is { } ag) w.WriteString("agent", ag);
        if (e.Model is { } m) w.WriteString("model", m);
        if (e.PromptHash is { } ph) w.WriteString("prompt_hash", ph);
        if (e.TraceId is { } traceId) w.WriteString("trace_id", traceId);
        if (e.SpanId is { } spanId) w.WriteString("span_id", spanId);
        w.WritePropertyName("payload");
        using (var doc = JsonDocument.Parse(e.Payload)) doc.RootElement.WriteTo(w);
        w.WriteEndObject();
    }
}
