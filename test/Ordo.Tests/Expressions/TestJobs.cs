using System.Text.Json;
using Ordo.Events;
using Ordo.State;

namespace Ordo.Tests.Expressions;

/// <summary>Builds <see cref="JobState"/>s from real events, the way the runtime derives them.</summary>
internal sealed class TestJobs
{
    private static readonly DateTimeOffset T0 = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly List<NewEvent> _events = [];
    private readonly Dictionary<string, int> _artifactVersions = new(StringComparer.Ordinal);

    public TestJobs(string input = "{}", string tenant = "acme", string jobId = "0123456789abcdef0123456789abcdef")
    {
        JobId = new JobId(jobId);
        _events.Add(EventFactory.Job(EventTypes.JobSubmitted,
            new JobSubmittedPayload("wf", 3, "sha256:test", tenant, "alice", JsonElementFactory.Parse(input), null, null, null, "trace", 0), T0));
    }

    public JobId JobId { get; }

    /// <summary>A step visit that succeeded after <paramref name="attempts"/> attempts.</summary>
    public TestJobs Succeeded(string step, string output, int attempts = 1, int visit = 1)
    {
        var at = new StepRef(step, visit, 1);
        _events.Add(EventFactory.Step(EventTypes.StepScheduled, at, new StepScheduledPayload("agent", "route", null, null), T0));
        _events.Add(EventFactory.Step(EventTypes.StepSucceeded, at with { Attempt = attempts }, new StepSucceededPayload(JsonElementFactory.Parse(output), 5, null, null), T0));
        return this;
    }

    /// <summary>A step visit whose last attempt failed.</summary>
    public TestJobs Failed(string step, int attempts = 1)
    {
        var at = new StepRef(step, 1, 1);
        _events.Add(EventFactory.Step(EventTypes.StepScheduled, at, new StepScheduledPayload("agent", "route", null, null), T0));
        _events.Add(EventFactory.Step(EventTypes.StepFailed, at with { Attempt = attempts }, new StepFailedPayload("tool_error", "boom", false, false, null, 5, null), T0));
        return this;
    }

    /// <summary>Puts a new version of an artifact and gives it a verdict: <c>verified</c>, <c>quarantined</c> or <c>rejected</c>.</summary>
    public TestJobs Artifact(string name, string value, string status = "verified", string step = "producer")
    {
        var version = _artifactVersions[name] = _artifactVersions.GetValueOrDefault(name) + 1;
        var at = new StepRef(step, 1, 1);
        _events.Add(EventFactory.Step(EventTypes.ArtifactPut, at,
            new ArtifactPutPayload(name, version, JsonElementFactory.Parse(value), new ArtifactProvenance(step, 1, 1, null, null, null, null)), T0));
        var type = status switch
        {
            "verified" => EventTypes.ArtifactVerified,
            "quarantined" => EventTypes.ArtifactQuarantined,
            _ => EventTypes.ArtifactRejected,
        };
        _events.Add(EventFactory.Step(type, at, new ArtifactVerdictPayload(name, version, status, status == "verified" ? null : "test", null), T0));
        return this;
    }

    public JobState Build()
    {
        var sealedEvents = EventChain.Seal(JobId, 0, EventChain.GenesisHash, _events);
        return JobStateReducer.Apply(JobStateReducer.Start(sealedEvents[0]), sealedEvents.Skip(1));
    }

    public static JsonElement Json(string text) => JsonElementFactory.Parse(text);
}
