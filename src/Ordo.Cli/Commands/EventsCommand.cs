using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Ordo.Cli.Hosting;
using Ordo.Cli.Output;
using Ordo.Events;
using Ordo.State;

namespace Ordo.Cli.Commands;

/// <summary><c>ordo events JOB_ID</c>: the job's event log.</summary>
internal static class EventsCommand
{
    public static Command Create(CommandEnvironment env)
    {
        var jobArg = new Argument<string>("job") { Description = "The job id." };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing new events until the job ends or pauses (or Ctrl-C)." };
        var after = new Option<long>("--after") { Description = "Only events after this sequence number." };
        var command = new Command("events", "Print the job's event log; --json prints one JSON object per line.") { jobArg, follow, after };
        env.SetAction(command, async (ctx, parse) =>
        {
            var id = CliHost.ParseJobId(parse.GetValue(jobArg));
            var project = await CliHost.StoreProjectAsync(ctx).ConfigureAwait(false);
            await using var host = await CliHost.OpenAsync(ctx, project, create: false, readOnly: true).ConfigureAwait(false);
            var record = await host.GetJobAsync(id, ctx.Stop).ConfigureAwait(false);
            var last = Math.Max(0, parse.GetValue(after));
            while (true)
            {
                await foreach (var e in host.Store.ReadEventsAsync(id, last, CancellationToken.None).ConfigureAwait(false))
                {
                    if (!ctx.Quiet)
                    {
                        await ctx.Out.WriteLineAsync(ctx.Json ? JsonOut.Event(e) : HumanLine(e, record.CreatedAt)).ConfigureAwait(false);
                    }

                    last = e.Seq;
                }

                await ctx.Out.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                if (!parse.GetValue(follow)) break;
                var now = await host.Store.GetJobAsync(id, CancellationToken.None).ConfigureAwait(false);
                if (now is null || (now.LastSeq == last && (now.Status.IsTerminal() || now.Status == JobStatus.WaitingApproval))) break;
                try
                {
                    await Task.Delay(200, ctx.Stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    public static string HumanLine(EventEnvelope e, DateTimeOffset start)
    {
        var offset = (e.Timestamp - start).TotalMilliseconds;
        var where = e.StepId is null ? "" : $"{e.StepId}{(e.Visit is > 1 ? "#" + e.Visit : "")}{(e.Scope is { } scope ? $" [{scope}]" : "")}{(e.Attempt is > 1 ? " attempt " + e.Attempt : "")}";
        var who = e.Agent is null ? "" : $"  [{e.Agent}{(e.Model is null ? "" : " on " + e.Model)}]";
        return HumanOut.OneLine(string.Create(CultureInfo.InvariantCulture, $"{e.Seq,5}  +{offset,8:0} ms  {e.Type,-20} {where,-22}{Describe(e)}{who}"));
    }

    private static string Describe(EventEnvelope e)
    {
        try
        {
            return e.Type switch
            {
                EventTypes.JobSubmitted => Do(e.GetPayload<JobSubmittedPayload>(), p => $"{p.Workflow}@{p.Version} by {p.Submitter} for {p.Tenant}"),
                EventTypes.StepScheduled => Do(e.GetPayload<StepScheduledPayload>(), p => $"{p.Kind} ({p.Reason}{(p.From is null ? "" : " from " + p.From)}){(p.AvailableAt is { } at ? " at " + JsonOut.Timestamp(at) : "")}"),
                EventTypes.StepStarted => Do(e.GetPayload<StepStartedPayload>(), p => p.TakenOverFrom is { } from ? $"delivery {p.Delivery}: taken over from {from}, whose lease was lost"
                    : p.Delivery > 1 ? $"delivery {p.Delivery} (redelivered)" : ""),
                EventTypes.StepSucceeded => Do(e.GetPayload<StepSucceededPayload>(), p => $"{HumanOut.Ms(p.DurationMs)}{(p.Next is { Count: > 0 } n ? " → " + string.Join(", ", n) : "")}{(p.HeldBy is { Count: > 0 } h ? " (route held by " + string.Join(", ", h) + ")" : "")}  {JobView.Value(p.Output, 60)}"),
                EventTypes.StepFailed => Do(e.GetPayload<StepFailedPayload>(), p => $"{p.Error}: {p.Message}{(p.WillRetry ? " (will retry)" : "")}"),
                EventTypes.ArtifactPut => Do(e.GetPayload<ArtifactPutPayload>(), p => $"{p.Name} v{p.Version}  {JobView.Value(p.Value, 60)}"),
                EventTypes.ArtifactVerified or EventTypes.ArtifactQuarantined or EventTypes.ArtifactRejected => Do(e.GetPayload<ArtifactVerdictPayload>(), p => $"{p.Name} v{p.Version}{(p.Reason is null ? "" : ": " + p.Reason)}"),
                EventTypes.ToolCallRequested => Do(e.GetPayload<ToolCallRequestedPayload>(), p => $"{p.Tool} ({p.Effect}) key {p.IdempotencyKey}"),
                EventTypes.ToolCallSucceeded => Do(e.GetPayload<ToolCallSucceededPayload>(), p => $"{p.Tool} {HumanOut.Ms(p.DurationMs)}  {JobView.Value(p.Result, 60)}"),
                EventTypes.ToolCallFailed => Do(e.GetPayload<ToolCallFailedPayload>(), p => $"{p.Tool} {p.Error}: {p.Message}"),
                EventTypes.ModelCallSucceeded => Do(e.GetPayload<ModelCallSucceededPayload>(), p => $"{p.Tier}/{p.Provider} {p.InputTokens}+{p.OutputTokens} tokens {HumanOut.Money(p.Cost)}"),
                EventTypes.ModelCallFailed => Do(e.GetPayload<ModelCallFailedPayload>(), p => $"{p.Tier}/{p.Provider} {p.Error}: {p.Message}"),
                EventTypes.PatternStarted => Do(e.GetPayload<PatternStartedPayload>(), DescribeStart),
                EventTypes.BranchStarted => Do(e.GetPayload<BranchStartedPayload>(), p => $"{Branch(p.Label)} started in [{p.Scope}]{(p.ChildJobId is null ? "" : $": child job {p.ChildJobId}{(p.Workflow is null ? "" : $" ({p.Workflow})")}")}"),
                EventTypes.BranchEnded => Do(e.GetPayload<BranchEndedPayload>(), p => $"{Branch(p.Label)} {p.Status}{(p.Reason is null ? "" : ": " + p.Reason)}{(p.ChildJobId is null ? "" : $" (child job {p.ChildJobId})")}{(p.Status == "succeeded" && p.Output is { } o ? "  " + JobView.Value(o, 60) : "")}"),
                EventTypes.PatternProgressed => Do(e.GetPayload<PatternProgressedPayload>(), p => $"{p.Kind} {p.Phase} (unit {p.Unit})  {JobView.Value(p.Data, 60)}"),
                EventTypes.JobCompleted => Do(e.GetPayload<JobCompletedPayload>(), p => $"after {HumanOut.Ms(p.DurationMs)}"),
                EventTypes.JobFailed => Do(e.GetPayload<JobFailedPayload>(), p => p.Reason),
                EventTypes.JobCancelled => Do(e.GetPayload<JobCancelledPayload>(), p => $"by {p.By}: {p.Reason}"),
                _ => JobView.Value(JsonElementFactory.Parse(e.Payload.Span), 80),
            };
        }
        catch (Exception ex) when (ex is JsonException or InvalidDataException)
        {
            return "(unreadable payload)";
        }
    }

    private static string DescribeStart(PatternStartedPayload p)
    {
        var join = JobView.JoinName(p.Join, p.Needed);
        return p.Kind switch
        {
            "parallel" => $"parallel: {p.Count} branch{(p.Count == 1 ? "" : "es")}{(p.Labels is { Count: > 0 } l ? " (" + string.Join(", ", l) + ")" : "")}, join {join}",
            "foreach" => $"foreach: {p.Count} item{(p.Count == 1 ? "" : "s")}{(p.MaxConcurrency is { } m ? $", {m} at once" : "")}{(p.Do is null ? "" : ", do " + p.Do)}, join {join}",
            "workflow" => $"workflow: child {p.Do}",
            _ => $"{p.Kind}: {p.Count}, join {join}",
        };
    }

    /// <summary>How a branch label reads: <c>branch p2</c>, <c>item 3</c>, <c>child</c>.</summary>
    private static string Branch(string label) => label == "child" ? "child" : label.Length > 0 && label.All(char.IsAsciiDigit) ? "item " + label : "branch " + label;

    private static string Do<T>(T payload, Func<T, string> f) => f(payload);
}
