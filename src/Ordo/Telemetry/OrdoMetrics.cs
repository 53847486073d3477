using System.Diagnostics;
using System.Diagnostics.Metrics;
using Ordo.Events;
using Ordo.State;

namespace Ordo.Telemetry;

/// <summary>
/// The runtime's instruments (meter <c>Ordo</c>). Labels are bounded: workflow names, step kinds, outcomes, tool and
/// model names come from definitions. Tenants are never labels: <c>/metrics</c> is one page for every tenant, so it
/// must not tell one tenant another's names or volumes. Job ids, step ids of branches, prompts and arguments are never labels. Every recording is guarded by the
/// instrument's <see cref="Instrument.Enabled"/>: with no listener nothing is measured.
/// </summary>
internal static class OrdoMetrics
{
    public static readonly Histogram<double> StepDuration = OrdoTelemetry.Meter.CreateHistogram<double>(
        "ordo.step.duration", "s", "How long a step attempt ran, from its handler's start to its outcome (before the commit).");

    public static readonly Histogram<double> CommitDuration = OrdoTelemetry.Meter.CreateHistogram<double>(
        "ordo.step.commit.duration", "s", "How long a step's commit took, planning and writing included.");

    public static readonly Histogram<double> QueueWait = OrdoTelemetry.Meter.CreateHistogram<double>(
        "ordo.queue.wait", "s", "How long a work item waited between becoming available and its first claim.");

    public static readonly Counter<long> StepRetries = OrdoTelemetry.Meter.CreateCounter<long>(
        "ordo.step.retries", "{attempt}", "Step attempts after the first (a retry of the same visit).");

    public static readonly Counter<long> GateRejections = OrdoTelemetry.Meter.CreateCounter<long>(
        "ordo.gate.rejections", "{artifact}", "Artifacts a verification gate rejected or quarantined.");

    public static readonly Counter<long> JobsSubmitted = OrdoTelemetry.Meter.CreateCounter<long>(
        "ordo.jobs.submitted", "{job}", "Jobs submitted by this process.");

    public static readonly Counter<long> JobsEnded = OrdoTelemetry.Meter.CreateCounter<long>(
        "ordo.jobs.ended", "{job}", "Jobs that reached a terminal status in a commit of this process, by status.");

    public static readonly Histogram<double> JobDuration = OrdoTelemetry.Meter.CreateHistogram<double>(
        "ordo.job.duration", "s", "From a job's submission to its terminal status.");

    public static readonly Histogram<double> ToolDuration = OrdoTelemetry.Meter.CreateHistogram<double>(
        "ordo.tool.duration", "s", "How long a tool call took through the gateway (retries and waits included).");

    public static readonly Histogram<long> TokenUsage = OrdoTelemetry.Meter.CreateHistogram<long>(
        "gen_ai.client.token.usage", "{token}", "Tokens used by one model call (GenAI semantic conventions).");

    public static readonly Histogram<double> ModelDuration = OrdoTelemetry.Meter.CreateHistogram<double>(
        "gen_ai.client.operation.duration", "s", "How long a model call took (GenAI semantic conventions).");

    public static readonly Counter<long> Tokens = OrdoTelemetry.Meter.CreateCounter<long>(
        "ordo.model.tokens", "{token}", "Tokens used by model calls, by workflow and token type.");

    public static readonly Counter<double> Cost = OrdoTelemetry.Meter.CreateCounter<double>(
        "ordo.model.cost", "{cost}", "Cost of model calls at the tier's prices (in the currency the prices are given in).");

    /// <summary>Records how long a step attempt ran (<see cref="StepDuration"/>), by workflow, step kind and outcome.</summary>
    public static void StepRan(string workflow, string? kind, string outcome, double milliseconds)
    {
        if (StepDuration.Enabled)
        {
            StepDuration.Record(milliseconds / 1000, new TagList { { "ordo.workflow", workflow }, { "ordo.step.kind", kind }, { "ordo.step.outcome", outcome } });
        }
    }

    /// <summary>Counts what a commit of this process wrote: jobs that ended and artifacts a gate stopped.</summary>
    public static void Committed(JobState post, IReadOnlyList<EventEnvelope> events)
    {
        if (!JobsEnded.Enabled && !GateRejections.Enabled && !JobDuration.Enabled && !JobsSubmitted.Enabled) return;
        foreach (var e in events)
        {
            switch (e.Type)
            {
                case EventTypes.JobSubmitted when JobsSubmitted.Enabled:
                    JobsSubmitted.Add(1, new TagList { { "ordo.workflow", post.Workflow } });
                    break;
                case EventTypes.JobCompleted or EventTypes.JobFailed or EventTypes.JobCancelled:
                    var status = post.Status.ToWire();
                    if (JobsEnded.Enabled) JobsEnded.Add(1, new TagList { { "ordo.workflow", post.Workflow }, { "ordo.job.status", status } });
                    if (JobDuration.Enabled) JobDuration.Record((e.Timestamp - post.CreatedAt).TotalSeconds, new TagList { { "ordo.workflow", post.Workflow }, { "ordo.job.status", status } });
                    break;
                case EventTypes.ArtifactRejected or EventTypes.ArtifactQuarantined when GateRejections.Enabled:
                    GateRejections.Add(1, new TagList { { "ordo.workflow", post.Workflow }, { "ordo.gate.status", e.Type == EventTypes.ArtifactRejected ? "rejected" : "quarantined" } });
                    break;
            }
        }
    }
}
