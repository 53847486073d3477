using Ordo.Engine;
using Ordo.Events;
using Ordo.State;
using Ordo.Workflows;

namespace Ordo.Verification;

/// <summary>The verdict on the artifacts of one step attempt.</summary>
/// <param name="Events">ArtifactPut and a verdict event per artifact.</param>
/// <param name="Rejection">Why an artifact was rejected (the attempt then fails), or null.</param>
public sealed record VerificationResult(IReadOnlyList<NewEvent> Events, string? Rejection);

/// <summary>
/// Checks artifacts against their contracts before anything downstream can see them: the JSON Schema of the
/// artifact type. A rejected artifact is recorded (with its errors) and never propagated.
/// </summary>
public static class ArtifactVerifier
{
    /// <summary>Verifies the artifacts of an outcome.</summary>
    public static VerificationResult Verify(WorkflowDefinition workflow, JobState state, StepRef step, StepOutcome outcome, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(workflow);
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(outcome);
        if (outcome.Artifacts.Count == 0)
        {
            return new VerificationResult([], null);
        }

        var events = new List<NewEvent>();
        string? rejection = null;
        foreach (var candidate in outcome.Artifacts)
        {
            var version = (state.Artifacts.TryGetValue(candidate.Name, out var existing) ? existing.Latest.Version : 0) + 1;
            var provenance = new ArtifactProvenance(step.StepId, step.Visit, step.Attempt, outcome.Agent, outcome.PromptHash, outcome.Model, outcome.ToolCalls.Count == 0 ? null : outcome.ToolCalls);
            events.Add(EventFactory.Step(EventTypes.ArtifactPut, step, new ArtifactPutPayload(candidate.Name, version, candidate.Value, provenance), now, outcome.Agent, outcome.PromptHash, outcome.Model));

            IReadOnlyList<string> errors = [];
            if (workflow.Artifacts.TryGetValue(candidate.Name, out var type) && type.Schema is { } schema)
            {
                errors = schema.Validate(candidate.Value);
            }

            if (errors.Count > 0)
            {
                var reason = $"artifact '{candidate.Name}' does not match its schema: {string.Join("; ", errors)}";
                events.Add(EventFactory.Step(EventTypes.ArtifactRejected, step, new ArtifactVerdictPayload(candidate.Name, version, "rejected", reason, errors), now, outcome.Agent));
                rejection ??= reason;
            }
            else
            {
                events.Add(EventFactory.Step(EventTypes.ArtifactVerified, step, new ArtifactVerdictPayload(candidate.Name, version, "verified", null, null), now, outcome.Agent));
            }
        }

        return new VerificationResult(events, rejection);
    }
}
