using System.Diagnostics;
using Ordo.Events;
using Ordo.Queue;
using Ordo.State;

namespace Ordo.Telemetry;

/// <summary>
/// Starts the runtime's spans: a job span when a job is submitted, a span per step attempt (a child of the job's
/// context, in whichever process runs it), and inside it a span per model call (GenAI <c>chat {model}</c>) and per tool
/// call (<c>execute_tool {tool}</c>). Each returns null when nothing listens, and then costs one check.
/// </summary>
internal static class OrdoSpans
{
    /// <summary>Whether anything listens to Ordo's spans.</summary>
    public static bool Listening => OrdoTelemetry.Source.HasListeners();

    /// <summary>The span of a job's submission, the root of the job's spans; a child of the caller's span, if any.</summary>
    public static Activity? StartJob(JobId jobId, string workflow, int version, string tenant)
    {
        if (!OrdoTelemetry.Source.HasListeners()) return null;
        var activity = OrdoTelemetry.Source.StartActivity($"job {workflow}", ActivityKind.Producer);
        if (activity is null) return null;
        activity.SetTag("ordo.job.id", jobId.Value);
        activity.SetTag("ordo.workflow", workflow);
        activity.SetTag("ordo.workflow.version", version);
        activity.SetTag("ordo.tenant", tenant);
        return activity;
    }

    /// <summary>The span of one step attempt, a child of its job's context.</summary>
    public static Activity? StartStep(JobState state, WorkItem item, string? kind, string worker)
    {
        if (!OrdoTelemetry.Source.HasListeners()) return null;
        var parent = OrdoTelemetry.JobContext(state.JobId, state.TraceId, state.RootSpanId);
        var step = item.Step;
        var activity = OrdoTelemetry.Source.StartActivity($"step {step.StepId}", ActivityKind.Consumer, parent);
        if (activity is null) return null;
        activity.SetTag("ordo.job.id", state.JobId.Value);
        activity.SetTag("ordo.workflow", state.Workflow);
        activity.SetTag("ordo.workflow.version", state.Version);
        activity.SetTag("ordo.tenant", state.Tenant);
        activity.SetTag("ordo.step.id", step.StepId);
        if (kind is not null) activity.SetTag("ordo.step.kind", kind);
        activity.SetTag("ordo.step.visit", step.Visit);
        activity.SetTag("ordo.step.attempt", step.Attempt);
        if (step.Scope is not null) activity.SetTag("ordo.step.scope", step.Scope);
        activity.SetTag("ordo.step.delivery", item.Deliveries);
        activity.SetTag("ordo.worker", worker);
        return activity;
    }

    /// <summary>A model call's span (GenAI semantic conventions: <c>chat {model}</c>, kind client).</summary>
    public static Activity? StartChat(string provider, string model, string tier, long? maxOutputTokens)
    {
        if (!OrdoTelemetry.Source.HasListeners()) return null;
        var activity = OrdoTelemetry.Source.StartActivity($"chat {model}", ActivityKind.Client);
        if (activity is null) return null;
        activity.SetTag("gen_ai.operation.name", "chat");
        activity.SetTag("gen_ai.provider.name", provider);
        activity.SetTag("gen_ai.request.model", model);
        activity.SetTag("ordo.model.tier", tier);
        if (maxOutputTokens is { } max) activity.SetTag("gen_ai.request.max_tokens", max);
        return activity;
    }

    /// <summary>A tool call's span (GenAI semantic conventions: <c>execute_tool {tool}</c>).</summary>
    public static Activity? StartTool(string tool, string callId)
    {
        if (!OrdoTelemetry.Source.HasListeners()) return null;
        var activity = OrdoTelemetry.Source.StartActivity($"execute_tool {tool}", ActivityKind.Internal);
        if (activity is null) return null;
        activity.SetTag("gen_ai.operation.name", "execute_tool");
        activity.SetTag("gen_ai.tool.name", tool);
        activity.SetTag("gen_ai.tool.call.id", callId);
        return activity;
    }

    /// <summary>Marks a span failed: status error with the message, and <c>error.type</c>.</summary>
    public static void Failed(Activity? activity, string errorType, string? message)
    {
        if (activity is null) return;
        activity.SetStatus(ActivityStatusCode.Error, message);
        activity.SetTag("error.type", errorType);
    }

    /// <summary>The span an event recorded now belongs to: the current span when it is one of Ordo's.</summary>
    public static Activity? Current => Activity.Current is { } current && ReferenceEquals(current.Source, OrdoTelemetry.Source) ? current : null;

    /// <summary>Stamps an event with the trace and span it was created in, unless it has them already.</summary>
    public static void Stamp(NewEvent e, Activity? activity)
    {
        if (activity is not null && e.TraceId is null) e.SetTrace(activity.TraceId.ToHexString(), activity.SpanId.ToHexString());
    }

    /// <summary>Stamps an event with a span's context, unless it has one already.</summary>
    public static void Stamp(NewEvent e, ActivityContext context)
    {
        if (context != default && e.TraceId is null) e.SetTrace(context.TraceId.ToHexString(), context.SpanId.ToHexString());
    }
}
