using System.Text.Json;
using Ordo.Engine;
using Ordo.Events;
using Ordo.Expressions;
using Ordo.Policies;
using Ordo.State;
using Ordo.Workflows;

namespace Ordo.Verification;

/// <summary>The verdict on the artifacts of one step attempt.</summary>
/// <param name="Events">ArtifactPut, a verdict event per artifact, and policy decisions.</param>
/// <param name="Rejection">Why an artifact was rejected (the attempt then fails), or null.</param>
/// <param name="RejectionError">The failure kind: <c>contract_violation</c>, <c>evidence_missing</c>, <c>authoritative_mismatch</c>, <c>policy_denied</c>.</param>
/// <param name="Approvals">Approvals requested for artifacts a policy holds back.</param>
internal sealed record VerificationResult(IReadOnlyList<NewEvent> Events, string? Rejection, string? RejectionError, IReadOnlyList<ApprovalRequest> Approvals);

/// <summary>
/// Checks every artifact before anything downstream can see it, in this order: its JSON Schema; its evidence
/// (<c>evidence: required</c>); its authoritative fields (equal to what the named tool returned in this job);
/// <c>on: artifact</c> policies; its confidence (<c>verify.min_confidence</c>). A failed schema, evidence or
/// authoritative check — or a policy deny — rejects the artifact and fails the attempt; low confidence (or a policy
/// asking for approval) quarantines it: recorded, invisible downstream unless a step accepts quarantined artifacts
/// or a gate promotes it.
/// </summary>
internal sealed class ArtifactVerifier(PolicyEngine policies)
{
    /// <summary>Verifies the artifacts of an outcome against the state that includes the step's own tool calls.</summary>
    public async ValueTask<VerificationResult> VerifyAsync(WorkflowDefinition workflow, JobState state, StepRef step, StepOutcome outcome, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(workflow);
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(outcome);
        if (outcome.Artifacts.Count == 0)
        {
            return new VerificationResult([], null, null, []);
        }

        var events = new List<NewEvent>();
        var approvals = new List<ApprovalRequest>();
        string? rejection = null, rejectionError = null;
        foreach (var candidate in outcome.Artifacts)
        {
            var version = (state.Artifacts.TryGetValue(candidate.Name, out var existing) ? existing.Latest.Version : 0) + 1;
            var provenance = new ArtifactProvenance(step.StepId, step.Visit, step.Attempt, outcome.Agent, outcome.PromptHash, outcome.Model, outcome.ToolCalls.Count == 0 ? null : outcome.ToolCalls);
            events.Add(EventFactory.Step(EventTypes.ArtifactPut, step, new ArtifactPutPayload(candidate.Name, version, candidate.Value, provenance), now, outcome.Agent, outcome.PromptHash, outcome.Model));
            workflow.Artifacts.TryGetValue(candidate.Name, out var type);

            var (error, reason, details) = Check(type, candidate, state);
            string? quarantine = null;
            ApprovalRequest? approval = null;
            string? policy = null;
            if (error is null && policies.HasRules(workflow.Project.Policies, PolicyPoint.Artifact))
            {
                var scope = new ExpressionScope { State = state, Constraints = workflow.ConstraintsJson, Attempt = step.Attempt, StepScope = step.Scope }
                    .With("artifact", Json.Of(new { name = candidate.Name, version, value = candidate.Value, confidence = Confidence(candidate.Value), step = step.StepId, agent = outcome.Agent }));
                var decision = await policies.EvaluateAsync(workflow.Project.Policies, new PolicyContext(PolicyPoint.Artifact, scope, candidate.Name), cancellationToken).ConfigureAwait(false);
                if (decision.Deciding is { } d)
                {
                    events.Add(Governance.PolicyEvent(step, PolicyPoint.Artifact, candidate.Name, decision, now));
                    policy = d.Policy;
                    if (decision.Effect == PolicyEffect.Deny)
                    {
                        (error, reason) = ("policy_denied", $"artifact '{candidate.Name}' denied by policy {d.Policy} rule '{d.Rule}': {d.Reason}");
                    }
                    else if (decision.Effect == PolicyEffect.RequireApproval)
                    {
                        var req = d.Approval ?? new ApprovalRequirement("approver");
                        quarantine = $"held for approval by policy {d.Policy} rule '{d.Rule}': {d.Reason}";
                        approval = new ApprovalRequest($"{step.WorkKey}.a.{candidate.Name}", "artifact", req.Role, req.Count,
                            req.Expires is { } ex ? now + ex : null, "fail", d.Reason, d.Rule, d.Policy, $"{candidate.Name}@{version}", candidate.Value, Holds: true);
                    }
                }
            }

            if (error is not null)
            {
                events.Add(EventFactory.Step(EventTypes.ArtifactRejected, step, new ArtifactVerdictPayload(candidate.Name, version, "rejected", reason, details), now, outcome.Agent, policy: policy));
                rejection ??= reason;
                rejectionError ??= error;
                continue;
            }

            if (quarantine is null && type?.MinConfidence is { } min)
            {
                var confidence = Confidence(candidate.Value);
                if (confidence is null)
                {
                    quarantine = $"artifact '{candidate.Name}' gives no confidence (a number in [0, 1]); verify.min_confidence is {min}";
                }
                else if (confidence < min)
                {
                    quarantine = $"confidence {confidence} is below verify.min_confidence {min}";
                }
            }

            if (quarantine is not null)
            {
                events.Add(EventFactory.Step(EventTypes.ArtifactQuarantined, step, new ArtifactVerdictPayload(candidate.Name, version, "quarantined", quarantine, null), now, outcome.Agent, policy: policy));
                if (approval is not null) approvals.Add(approval);
                continue;
            }

            events.Add(EventFactory.Step(EventTypes.ArtifactVerified, step, new ArtifactVerdictPayload(candidate.Name, version, "verified", null, null), now, outcome.Agent, policy: policy));
        }

        return new VerificationResult(events, rejection, rejectionError, approvals);
    }

    private static (string? Error, string? Reason, IReadOnlyList<string>? Details) Check(ArtifactType? type, ArtifactCandidate candidate, JobState state)
    {
        if (type is null) return (null, null, null);
        if (type.Schema is { } schema && schema.Validate(candidate.Value) is { Count: > 0 } errors)
        {
            return ("contract_violation", $"artifact '{candidate.Name}' does not match its schema: {string.Join("; ", errors)}", errors);
        }

        if (type.EvidenceRequired && EvidenceProblem(candidate.Value, state) is { } evidence)
        {
            return ("evidence_missing", $"artifact '{candidate.Name}': {evidence}", [evidence]);
        }

        foreach (var (field, tool) in type.Authoritative)
        {
            if (AuthoritativeProblem(candidate.Value, field, tool, state) is { } problem)
            {
                return ("authoritative_mismatch", $"artifact '{candidate.Name}': {problem}", [problem]);
            }
        }

        return (null, null, null);
    }

    /// <summary>The confidence an artifact value states, if it states one in [0, 1].</summary>
    public static double? Confidence(JsonElement value)
        => value.ValueKind == JsonValueKind.Object && value.TryGetProperty("confidence", out var c) && c.ValueKind == JsonValueKind.Number && c.GetDouble() is >= 0 and <= 1 and var d ? d : null;

    /// <summary>Why an artifact's evidence is not acceptable, or null when it is.</summary>
    public static string? EvidenceProblem(JsonElement value, JobState state)
    {
        if (value.ValueKind != JsonValueKind.Object || !value.TryGetProperty("evidence", out var evidence) || evidence.ValueKind != JsonValueKind.Array || evidence.GetArrayLength() == 0)
        {
            return "evidence is required and there is none (expected a non-empty 'evidence' list of { source, ref, quote })";
        }

        var i = 0;
        foreach (var item in evidence.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty("source", out var s) || s.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(s.GetString()))
            {
                return $"evidence[{i}] has no 'source'";
            }

            var source = s.GetString()!;
            var reference = item.TryGetProperty("ref", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
            if (source.StartsWith("tool:", StringComparison.Ordinal))
            {
                var tool = source[5..];
                if (!state.ToolResults.TryGetValue(tool, out var results) || results.IsEmpty)
                {
                    return $"evidence[{i}] cites tool '{tool}', which was not called (successfully) in this job";
                }

                if (reference is not null && !results.Any(x => x.CallId == reference))
                {
                    return $"evidence[{i}] cites call '{reference}' of tool '{tool}', which is not one of its calls in this job ({string.Join(", ", results.Select(x => x.CallId))})";
                }
            }
            else if (source.StartsWith("artifact:", StringComparison.Ordinal))
            {
                var name = source[9..];
                if (!state.Artifacts.TryGetValue(name, out var a) || a.Verified is null)
                {
                    return $"evidence[{i}] cites artifact '{name}', which is not a verified artifact of this job";
                }
            }
            else if (source != "input" && !(Uri.TryCreate(source, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"))
            {
                return $"evidence[{i}] has source '{source}' (expected tool:NAME, artifact:NAME, input or an http(s) URL)";
            }

            i++;
        }

        return null;
    }

    /// <summary>Why an authoritative field does not match what its tool returned, or null when it matches.</summary>
    public static string? AuthoritativeProblem(JsonElement value, string field, string tool, JobState state)
    {
        if (value.ValueKind != JsonValueKind.Object || !value.TryGetProperty(field, out var claimed))
        {
            return $"authoritative field '{field}' is missing (it must come from tool '{tool}')";
        }

        if (!state.ToolResults.TryGetValue(tool, out var results) || results.IsEmpty)
        {
            return $"authoritative field '{field}' = {claimed.GetRawText()} but tool '{tool}' was not called in this job, so the value can only have been generated";
        }

        var seen = new List<string>();
        foreach (var result in results)
        {
            foreach (var candidate in Fields(result.Result, field))
            {
                if (JsonEquals(candidate, claimed)) return null;
                seen.Add(candidate.GetRawText());
            }
        }

        return seen.Count == 0
            ? $"authoritative field '{field}' = {claimed.GetRawText()} but no result of tool '{tool}' has a field '{field}'"
            : $"authoritative field '{field}' = {claimed.GetRawText()} does not match what tool '{tool}' returned ({string.Join(", ", seen.Distinct().Take(10))})";
    }

    private static IEnumerable<JsonElement> Fields(JsonElement result, string field)
    {
        if (result.ValueKind != JsonValueKind.Object) yield break;
        if (result.TryGetProperty(field, out var top)) yield return top;
        if (result.TryGetProperty("rows", out var rows) && rows.ValueKind == JsonValueKind.Array)
        {
            foreach (var row in rows.EnumerateArray())
            {
                if (row.ValueKind == JsonValueKind.Object && row.TryGetProperty(field, out var col)) yield return col;
            }
        }
    }

    /// <summary>JSON equality; numbers compare by value (120 equals 120.0).</summary>
    public static bool JsonEquals(JsonElement a, JsonElement b)
    {
        if (a.ValueKind == JsonValueKind.Number && b.ValueKind == JsonValueKind.Number)
        {
            return a.TryGetDecimal(out var x) && b.TryGetDecimal(out var y) ? x == y : a.GetDouble().Equals(b.GetDouble());
        }

        if (a.ValueKind != b.ValueKind) return false;
        return a.ValueKind switch
        {
            JsonValueKind.String => a.GetString() == b.GetString(),
            JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null => true,
            JsonValueKind.Array => a.GetArrayLength() == b.GetArrayLength() && a.EnumerateArray().Zip(b.EnumerateArray()).All(p => JsonEquals(p.First, p.Second)),
            JsonValueKind.Object => a.EnumerateObject().Count() == b.EnumerateObject().Count()
                && a.EnumerateObject().All(p => b.TryGetProperty(p.Name, out var q) && JsonEquals(p.Value, q)),
            _ => false,
        };
    }
}
