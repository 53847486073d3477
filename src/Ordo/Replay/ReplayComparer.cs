using System.Text.Json;
using System.Text.Json.Nodes;
using Ordo.Events;

namespace Ordo.Replay;

/// <summary>
/// Compares a replayed job tree with its recording, event for event, and names the first divergence. Events are
/// compared per step visit (a step visit's events are in a fixed order; visits of parallel branches interleave as the
/// workers happened to run them), with what depends only on the clock or the process left out: timestamps, durations,
/// delays, worker names and deliveries (<c>StepStarted</c>), trace ids, the ids of child jobs, circuit changes seen from
/// other jobs, and the definition hash (a replay against a new definition has another). The branches a join cancelled
/// are compared as far as both ran: how far a cancelled branch got is a race, not a decision.
/// </summary>
internal static class ReplayComparer
{
    private static readonly HashSet<string> Ignored = new(StringComparer.Ordinal) { EventTypes.StepStarted, EventTypes.CircuitStateChanged };

    private static readonly HashSet<string> Unordered = new(StringComparer.Ordinal) { EventTypes.BranchStarted, EventTypes.BranchEnded };

    private static readonly HashSet<string> VolatileKeys = new(StringComparer.Ordinal)
    {
        "duration_ms", "retry_delay_ms", "retry_after_ms", "available_at", "expires_at", "trace_id", "span_id", "definition_hash",
        "root_job_id", "parent_job_id", "child_job_id", "idempotency_key", "worker", "delivery", "taken_over_from", "attempts", "cached", "at",
    };

    /// <summary>Step attempts that ended (succeeded, failed, blocked) in a job tree.</summary>
    public static int EndedAttempts(RecordedJob job)
        => job.Tree().Sum(j => j.Events.Count(e => e.Type is EventTypes.StepSucceeded or EventTypes.StepFailed or EventTypes.StepBlocked));

    /// <summary>
    /// Whether a recorded job's log holds its end (<c>JobCompleted</c>, <c>JobFailed</c>, <c>JobCancelled</c>). The log of
    /// a job that has not ended (queued, running, waiting for an approval) stops where the job is: its replay is compared
    /// with it only as far as it goes.
    /// </summary>
    public static bool Ended(RecordedJob job)
        => job.Events.Any(e => e.Type is EventTypes.JobCompleted or EventTypes.JobFailed or EventTypes.JobCancelled);

    /// <summary>
    /// The <c>JobCancelled</c> event of a job cancelled from outside the engine — by a user (<c>ordo cancel</c>), a kill
    /// switch, or the cancellation of its parent job — or null. Such a job is compared with its replay up to the
    /// cancellation: a replay has no one to cancel it. A shadow job's end at an approval is the engine's own (<c>by</c>
    /// <c>shadow</c>): it is replayed and compared whole.
    /// </summary>
    public static EventEnvelope? Cancellation(RecordedJob job)
        => job.Events.FirstOrDefault(e => e.Type == EventTypes.JobCancelled && e.GetPayload<JobCancelledPayload>().By != "shadow");

    /// <summary>
    /// A recorded job's events up to its cancellation (<see cref="Cancellation"/>): those before it, without the step's
    /// <c>StepBlocked</c> that a kill switch's cancellation writes with it (same <c>by</c>, in the same write).
    /// </summary>
    private static IReadOnlyList<EventEnvelope> UpToCancellation(RecordedJob job, EventEnvelope cancelled)
    {
        var by = cancelled.GetPayload<JobCancelledPayload>().By;
        return [.. job.Events.Where(e => e.Seq < cancelled.Seq
            && !(e.Seq == cancelled.Seq - 1 && e.Type == EventTypes.StepBlocked && e.GetPayload<StepBlockedPayload>().By == by))];
    }

    /// <summary>The first divergence between a recorded job tree and its replay; null when they match.</summary>
    public static ReplayDivergence? FirstDivergence(RecordedJob recorded, RecordedJob replayed)
        => Compare(recorded, replayed, cancelled: []).Divergence;

    private static (ReplayDivergence? Divergence, double Rank) Compare(RecordedJob recorded, RecordedJob replayed, IReadOnlyList<string> cancelled)
    {
        var cancelledHere = cancelled.Concat(recorded.Events
            .Where(e => e.Type == EventTypes.BranchEnded && e.StepId is not null && e.GetPayload<BranchEndedPayload>().Status == "cancelled")
            .Select(e => WorkKeys.BranchScope(WorkKeys.For(e.Scope, e.StepId!, e.Visit ?? 1), e.GetPayload<BranchEndedPayload>().Label))).ToList();

        ReplayDivergence? best = null;
        var bestRank = double.MaxValue;
        var child = recorded.Job.ParentJobId is null ? null : recorded.Job.JobId.Value;

        // A log that stops before the job's end is compared as far as it goes: each recorded event must be replayed in
        // its place; what the replay does past the recording's end (steps it never reached) is not compared.
        // So is the log of a job cancelled from outside, up to its cancellation.
        var cancellation = Cancellation(recorded);
        var upTo = !Ended(recorded) || cancellation is not null;
        var left = Streams(cancellation is null ? recorded.Events : UpToCancellation(recorded, cancellation));
        var right = Streams(replayed.Events);
        foreach (var key in left.Keys.Union(right.Keys))
        {
            left.TryGetValue(key, out var r);
            right.TryGetValue(key, out var p);
            if (upTo && r is null) continue;
            var scope = (r ?? p)![0].Scope;
            var partial = scope is not null && cancelledHere.Any(c => WorkKeys.IsWithin(scope, c));
            var found = partial || !upTo ? CompareStream(r ?? [], p ?? [], partial) : CompareUpTo(r!, p ?? []);
            if (found is not null && found.Value.Rank < bestRank)
            {
                bestRank = found.Value.Rank;
                best = found.Value.Divergence with { ChildJobId = child };
            }
        }

        // A sub-workflow's job is matched by the branch that started it; its divergence comes before the branch's end.
        var replayedChildren = replayed.Children.ToDictionary(c => c.Submitted.ParentStepId ?? "", StringComparer.Ordinal);
        foreach (var recordedChild in recorded.Children)
        {
            var branch = recordedChild.Submitted.ParentStepId ?? "";
            if (cancelledHere.Any(c => WorkKeys.IsWithin(branch, c))) continue;
            if (!replayedChildren.TryGetValue(branch, out var replayedChild)) continue;   // the parent's own events show it
            var started = recorded.Events.FirstOrDefault(e => e.Type == EventTypes.BranchStarted && e.GetPayload<BranchStartedPayload>().Scope == branch);
            var rank = (started?.Seq ?? 0) + 0.5;
            if (rank < bestRank && Compare(recordedChild, replayedChild, []).Divergence is { } inChild)
            {
                bestRank = rank;
                best = inChild;
            }
        }

        return (best, bestRank);
    }

    /// <summary>The events by step visit (<c>scope|step#visit</c>; the job's own under the empty key), in log order.</summary>
    private static Dictionary<string, List<EventEnvelope>> Streams(IReadOnlyList<EventEnvelope> events)
    {
        var streams = new Dictionary<string, List<EventEnvelope>>(StringComparer.Ordinal);
        foreach (var e in events)
        {
            if (Ignored.Contains(e.Type)) continue;
            var key = e.StepId is null ? "" : WorkKeys.For(e.Scope, e.StepId, e.Visit ?? 1);
            if (!streams.TryGetValue(key, out var list)) streams[key] = list = [];
            list.Add(e);
        }

        foreach (var list in streams.Values) Redelivered(list);
        return streams;
    }

    private static readonly HashSet<string> CallEvents = new(StringComparer.Ordinal)
    {
        EventTypes.ModelCallRequested, EventTypes.ModelCallSucceeded, EventTypes.ModelCallFailed,
        EventTypes.ToolCallRequested, EventTypes.ToolCallSucceeded, EventTypes.ToolCallFailed,
    };

    /// <summary>
    /// Leaves out of a visit's events what an earlier delivery of its attempt recorded for a call that a later delivery
    /// asked again (a worker killed or a lease lost during the call): the redelivery makes the call again with the same
    /// call id — the engine reuses only the answers its earlier deliveries got for the same request — so the call's
    /// events before its last request are the earlier delivery's, which a replay (one delivery) does not repeat.
    /// </summary>
    private static void Redelivered(List<EventEnvelope> events)
    {
        var lastRequest = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < events.Count; i++)
        {
            if (events[i].Type is EventTypes.ModelCallRequested or EventTypes.ToolCallRequested && CallId(events[i]) is { } id) lastRequest[id] = i;
        }

        if (lastRequest.Count == 0) return;
        var kept = new List<EventEnvelope>(events.Count);
        for (var i = 0; i < events.Count; i++)
        {
            var earlier = CallEvents.Contains(events[i].Type) && CallId(events[i]) is { } id && lastRequest.TryGetValue(id, out var last) && i < last;
            if (!earlier) kept.Add(events[i]);
        }

        events.Clear();
        events.AddRange(kept);
    }

    private static string? CallId(EventEnvelope e)
    {
        using var doc = JsonDocument.Parse(e.Payload);
        return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("call_id", out var id) && id.ValueKind == JsonValueKind.String ? id.GetString() : null;
    }

    private static (ReplayDivergence Divergence, double Rank)? CompareStream(List<EventEnvelope> recorded, List<EventEnvelope> replayed, bool partial)
    {
        var r = Arrange(recorded);
        var p = Arrange(replayed);
        var n = partial ? Math.Min(r.Count, p.Count) : Math.Max(r.Count, p.Count);
        for (var i = 0; i < n; i++)
        {
            var a = i < r.Count ? r[i] : null;
            var b = i < p.Count ? p[i] : null;
            if (a is not null && b is not null && Normalized(a) == Normalized(b)) continue;
            var rank = a?.Seq ?? b!.Seq;
            return (Describe(a, b), rank);
        }

        return null;
    }

    /// <summary>
    /// Compares a visit's events with a recording that stops (its job had not ended): every recorded event in its place,
    /// and every recorded branch event among the replayed ones; the replay's events past the recorded ones are not compared.
    /// </summary>
    private static (ReplayDivergence Divergence, double Rank)? CompareUpTo(List<EventEnvelope> recorded, List<EventEnvelope> replayed)
    {
        var r = recorded.Where(e => !Unordered.Contains(e.Type)).ToList();
        var p = replayed.Where(e => !Unordered.Contains(e.Type)).ToList();
        for (var i = 0; i < r.Count; i++)
        {
            var b = i < p.Count ? p[i] : null;
            if (b is not null && Normalized(r[i]) == Normalized(b)) continue;
            return (Describe(r[i], b), r[i].Seq);
        }

        var left = replayed.Where(e => Unordered.Contains(e.Type)).Select(e => (Event: e, Text: Normalized(e))).ToList();
        foreach (var a in recorded.Where(e => Unordered.Contains(e.Type)))
        {
            var text = Normalized(a);
            var at = left.FindIndex(x => x.Text == text);
            if (at < 0) return (Describe(a, left.Select(x => x.Event).FirstOrDefault(e => e.Type == a.Type)), a.Seq);
            left.RemoveAt(at);
        }

        return null;
    }

    /// <summary>A visit's events with its branch events last, in the order of their content: branches end in whichever order they finish.</summary>
    private static List<EventEnvelope> Arrange(List<EventEnvelope> events)
        => [.. events.Where(e => !Unordered.Contains(e.Type)), .. events.Where(e => Unordered.Contains(e.Type)).OrderBy(e => e.Type, StringComparer.Ordinal).ThenBy(Normalized, StringComparer.Ordinal)];

    /// <summary>The event as it is compared: its place and stamps, and its payload without what depends on the clock or the process.</summary>
    private static string Normalized(EventEnvelope e)
    {
        var payload = JsonNode.Parse(e.Payload.Span);
        // An artifact's version counts the puts of the job in commit order: among parallel branches and items that is a race.
        // A replay against a new definition runs that definition's version.
        Strip(payload, (e.Scope is not null && e.Type.StartsWith("Artifact", StringComparison.Ordinal)) || e.Type == EventTypes.JobSubmitted);
        var node = new JsonObject
        {
            ["type"] = e.Type,
            ["step"] = e.StepId,
            ["visit"] = e.Visit,
            ["attempt"] = e.Attempt,
            ["scope"] = e.Scope,
            ["agent"] = e.Agent,
            ["prompt_hash"] = e.PromptHash,
            ["model"] = e.Model,
            ["policy"] = e.Policy,
            ["payload"] = payload,
        };
        return Canonical(node);
    }

    /// <summary>
    /// A JSON value as one text in which object members are in name order (arrays keep theirs): two values that differ
    /// only in the order of their members (a reordered <c>args:</c> mapping, a reordered config) give the same text.
    /// </summary>
    internal static string Canonical(JsonNode? node)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            WriteCanonical(w, node);
        }

        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void WriteCanonical(Utf8JsonWriter w, JsonNode? node)
    {
        switch (node)
        {
            case null:
                w.WriteNullValue();
                break;
            case JsonObject o:
                w.WriteStartObject();
                foreach (var (name, value) in o.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    w.WritePropertyName(name);
                    WriteCanonical(w, value);
                }

                w.WriteEndObject();
                break;
            case JsonArray a:
                w.WriteStartArray();
                foreach (var item in a) WriteCanonical(w, item);
                w.WriteEndArray();
                break;
            default:
                node.WriteTo(w);
                break;
        }
    }

    private static void Strip(JsonNode? node, bool versionsRace)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var key in o.Select(p => p.Key).Where(k => VolatileKeys.Contains(k) || (versionsRace && k == "version")).ToList()) o.Remove(key);
                foreach (var (_, value) in o) Strip(value, versionsRace);
                break;
            case JsonArray a:
                foreach (var item in a) Strip(item, versionsRace);
                break;
        }
    }

    /// <summary>What differs between the recorded event and the replayed one at the same place (either may be missing).</summary>
    private static ReplayDivergence Describe(EventEnvelope? recorded, EventEnvelope? replayed)
    {
        var at = (recorded ?? replayed)!;
        var step = at.StepId ?? "(job)";
        var visit = at.StepId is null ? 0 : at.Visit ?? 1;
        string what;
        string r, p;
        if (recorded is not null && replayed is not null && recorded.Type == replayed.Type)
        {
            if (recorded.PromptHash != replayed.PromptHash)
            {
                (what, r, p) = ("prompt_hash", recorded.PromptHash ?? "(none)", replayed.PromptHash ?? "(none)");
            }
            else
            {
                switch (recorded.Type)
                {
                    case EventTypes.ModelCallRequested or EventTypes.ToolCallRequested:
                        (what, r, p) = ("request", Request(recorded), Request(replayed));
                        break;
                    case EventTypes.StepSucceeded:
                        var a = recorded.GetPayload<StepSucceededPayload>();
                        var b = replayed.GetPayload<StepSucceededPayload>();
                        (what, r, p) = !ReplaySource.SameJson(a.Output, b.Output)
                            ? ("output", Json(a.Output), Json(b.Output))
                            : !(a.Next ?? []).SequenceEqual(b.Next ?? [], StringComparer.Ordinal)
                                ? ("route", Route(a.Next), Route(b.Next))
                                : ("status", Summary(recorded), Summary(replayed));
                        break;
                    case EventTypes.StepScheduled:
                        (what, r, p) = ("route", Summary(recorded), Summary(replayed));
                        break;
                    case EventTypes.ModelCallSucceeded or EventTypes.ToolCallSucceeded or EventTypes.ArtifactPut or EventTypes.BranchEnded or EventTypes.PatternProgressed:
                        (what, r, p) = ("output", Summary(recorded), Summary(replayed));
                        break;
                    default:
                        (what, r, p) = ("status", Summary(recorded), Summary(replayed));
                        break;
                }
            }
        }
        else
        {
            var types = new[] { recorded?.Type, replayed?.Type };
            what = types.Any(t => t is EventTypes.ModelCallRequested or EventTypes.ToolCallRequested) ? "request"
                : types.Any(t => t is EventTypes.StepScheduled) ? "route"
                : "status";
            r = recorded is null ? "(nothing)" : what == "request" ? Request(recorded) : Summary(recorded);
            p = replayed is null ? "(nothing)" : what == "request" ? Request(replayed) : Summary(replayed);
        }

        if (recorded is not null && replayed is not null && r == p)
        {
            // The summaries agree (same type, same status): name the fields that differ instead.
            (r, p) = Fields(recorded, replayed);
        }

        return new ReplayDivergence(step, visit, what, r, p) { Scope = at.Scope };
    }

    /// <summary>The event type with the compared fields that differ between the two events, on each side (<c>(absent)</c> for a missing one).</summary>
    private static (string Recorded, string Replayed) Fields(EventEnvelope recorded, EventEnvelope replayed)
    {
        var a = Flatten(recorded);
        var b = Flatten(replayed);
        var differing = a.Keys.Union(b.Keys).Order(StringComparer.Ordinal)
            .Where(k => !a.TryGetValue(k, out var x) || !b.TryGetValue(k, out var y) || x != y)
            .ToList();
        string Side(EventEnvelope e, Dictionary<string, string> fields)
            => string.Join(" ", [e.Type, .. differing.Select(k => $"{k}={(fields.TryGetValue(k, out var v) ? v : "(absent)")}")]);
        return (Side(recorded, a), Side(replayed, b));
    }

    /// <summary>The compared fields of an event (its place and stamps, then <c>payload.NAME</c> for each payload member), as canonical JSON.</summary>
    private static Dictionary<string, string> Flatten(EventEnvelope e)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        if (JsonNode.Parse(Normalized(e)) is not JsonObject node) return fields;
        foreach (var (name, value) in node)
        {
            if (name == "payload" && value is JsonObject payload)
            {
                foreach (var (field, v) in payload) fields["payload." + field] = Canonical(v);
            }
            else if (value is not null)
            {
                fields[name] = Canonical(value);
            }
        }

        return fields;
    }

    private static string Request(EventEnvelope e) => e.Type switch
    {
        EventTypes.ModelCallRequested => $"model call {e.GetPayload<ModelCallRequestedPayload>().CallId} request {e.GetPayload<ModelCallRequestedPayload>().RequestHash}",
        EventTypes.ToolCallRequested => $"{e.GetPayload<ToolCallRequestedPayload>().Tool} {Json(e.GetPayload<ToolCallRequestedPayload>().Args)}",
        _ => Summary(e),
    };

    private static string Route(IReadOnlyList<string>? next) => next is null || next.Count == 0 ? "(end of branch)" : "next: " + string.Join(", ", next);

    private static string Json(JsonElement? value) => value is { } v ? v.GetRawText() : "null";

    /// <summary>The event type and the payload fields that say what happened (an error, a status, a reason).</summary>
    private static string Summary(EventEnvelope e)
    {
        using var doc = JsonDocument.Parse(e.Payload);
        var parts = new List<string> { e.Type };
        foreach (var name in new[] { "kind", "reason", "from", "error", "status", "name", "tool", "label", "message" })
        {
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.String)
            {
                parts.Add($"{name}={v.GetString()}");
            }
        }

        if (e.Type is EventTypes.ModelCallSucceeded or EventTypes.ToolCallSucceeded or EventTypes.ArtifactPut or EventTypes.BranchEnded or EventTypes.PatternProgressed)
        {
            var text = e.PayloadText;
            parts.Add(text.Length <= 300 ? text : text[..300] + "…");
        }

        return string.Join(" ", parts);
    }
}
