using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Ordo.Events;
using Ordo.State;
using Ordo.Storage;

namespace Ordo.Replay;

/// <summary>
/// The file of <c>ordo export</c>: one self-contained JSON document holding a job tree (each job's record and its events,
/// in the shape of <c>ordo events --json</c>) and the definitions the jobs were pinned to (workflow, config, prompts,
/// tools, policies and fixtures, as stored), for replay suites and bug reports. Secrets are redacted when it is written.
/// </summary>
public static partial class JobExport
{
    /// <summary>The format written (<c>"ordo_export": 1</c>).</summary>
    public const int Format = 1;

    private static readonly JsonWriterOptions Writer = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, Indented = true };

    /// <summary>Writes a recording as an export document; every text passes through <paramref name="redact"/> (the gateway's redactor).</summary>
    public static string Write(JobRecording recording, Func<string, string> redact)
    {
        ArgumentNullException.ThrowIfNull(recording);
        ArgumentNullException.ThrowIfNull(redact);
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, Writer))
        {
            w.WriteStartObject();
            w.WriteNumber("ordo_export", Format);
            w.WritePropertyName("job");
            WriteJob(w, recording.Root);
            w.WriteStartArray("definitions");
            foreach (var d in recording.Definitions.Values.OrderBy(d => d.Hash, StringComparer.Ordinal))
            {
                w.WriteStartObject();
                w.WriteString("hash", d.Hash);
                w.WriteString("workflow", d.Workflow);
                w.WriteNumber("version", d.Version);
                w.WritePropertyName("bundle");
                using (var bundle = JsonDocument.Parse(d.Content))
                {
                    bundle.RootElement.WriteTo(w);
                }

                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        // Events were redacted when recorded; the definitions' files may name secrets inline: the whole text is redacted.
        return redact(Encoding.UTF8.GetString(stream.ToArray()));
    }

    private static void WriteJob(Utf8JsonWriter w, RecordedJob recorded)
    {
        var j = recorded.Job;
        w.WriteStartObject();
        w.WriteString("job_id", j.JobId.Value);
        w.WriteString("workflow", j.Workflow);
        w.WriteNumber("version", j.Version);
        w.WriteString("tenant", j.Tenant);
        w.WriteString("status", j.Status.ToWire());
        Nullable(w, "reason", j.Reason);
        w.WriteString("submitter", j.Submitter);
        Nullable(w, "parent_job_id", j.ParentJobId?.Value);
        w.WriteString("root_job_id", j.RootJobId.Value);
        w.WriteString("definition_hash", j.DefinitionHash);
        w.WriteString("trace_id", j.TraceId);
        w.WriteNumber("priority", j.Priority);
        w.WriteString("created_at", Timestamp(j.CreatedAt));
        w.WriteString("updated_at", Timestamp(j.UpdatedAt));
        w.WriteStartArray("events");
        foreach (var e in recorded.Events) WriteEvent(w, e);
        w.WriteEndArray();
        w.WriteStartArray("children");
        foreach (var child in recorded.Children) WriteJob(w, child);
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>Writes one event in the shape of <c>ordo events --json</c>, its payload as stored (the bytes its hash covers).</summary>
    public static void WriteEvent(Utf8JsonWriter w, EventEnvelope e) => WriteEvent(w, e, asStored: true);

    /// <summary>
    /// Writes one event in the shape of <c>ordo events --json</c>: its payload as stored (<paramref name="asStored"/>, what an
    /// export needs to check the chain) or parsed and written again by <paramref name="w"/> (what listings print).
    /// </summary>
    public static void WriteEvent(Utf8JsonWriter w, EventEnvelope e, bool asStored)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(e);
        w.WriteStartObject();
        w.WriteNumber("seq", e.Seq);
        w.WriteString("type", e.Type);
        w.WriteString("job_id", e.JobId.Value);
        Nullable(w, "step_id", e.StepId);
        if (e.Attempt is { } a) w.WriteNumber("attempt", a); else w.WriteNull("attempt");
        if (e.Visit is { } v) w.WriteNumber("visit", v);
        if (e.Scope is { } s) w.WriteString("scope", s);
        w.WriteString("ts", Timestamp(e.Timestamp));
        Nullable(w, "agent", e.Agent);
        Nullable(w, "prompt_hash", e.PromptHash);
        Nullable(w, "model", e.Model);
        Nullable(w, "policy", e.Policy);
        if (e.TraceId is { } traceId) w.WriteString("trace_id", traceId);
        if (e.SpanId is { } spanId) w.WriteString("span_id", spanId);
        // As stored, the payload is the bytes its hash covers: the reader of an export checks the chain on them.
        w.WritePropertyName("payload");
        if (asStored)
        {
            w.WriteRawValue(e.Payload.Span);
        }
        else
        {
            using var doc = JsonDocument.Parse(e.Payload);
            doc.RootElement.WriteTo(w);
        }

        w.WriteString("hash", Convert.ToHexStringLower(e.Hash));
        w.WriteString("prev_hash", Convert.ToHexStringLower(e.PrevHash));
        w.WriteEndObject();
    }

    /// <summary>Reads an export document.</summary>
    /// <param name="text">The document.</param>
    /// <param name="file">The file's name, for errors.</param>
    /// <exception cref="OrdoValidationException">The document is not an export of this format; each problem names the file, the line where known, and the JSON path.</exception>
    public static JobRecording Parse(string text, string file)
    {
        ArgumentNullException.ThrowIfNull(text);
        // Errors name where a file is wrong, never what it holds: a file that is not even a JSON object (a file named
        // by mistake, a link to another file) is said to be no export, without a character of it.
        if (text.AsSpan().TrimStart() is var start && (start.IsEmpty || start[0] != '{'))
        {
            throw Problem(file, 0, 0, "", "this is not a file written by ordo export (an export is a JSON object); its content is not shown");
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = 256 });
        }
        catch (JsonException e)
        {
            throw Problem(file, (int)(e.LineNumber ?? -1) + 1, (int)(e.BytePositionInLine ?? 0) + 1, "", "the export is not valid JSON: " + Unquoted(Json.Describe(e)));
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw Problem(file, 0, 0, "$", "an export is a JSON object");
            if (!root.TryGetProperty("ordo_export", out var format) || format.ValueKind != JsonValueKind.Number)
            {
                throw Problem(file, 0, 0, "ordo_export", "missing: this is not a file written by ordo export");
            }

            if (!format.TryGetInt32(out var f) || f != Format)
            {
                throw Problem(file, 0, 0, "ordo_export", $"format {format.GetRawText()} is not one this ordo reads (it reads {Format})");
            }

            var definitions = new Dictionary<string, DefinitionRecord>(StringComparer.Ordinal);
            var list = Required(root, "definitions", JsonValueKind.Array, "", file);
            var i = 0;
            foreach (var d in list.EnumerateArray())
            {
                var path = $"definitions[{i++}]";
                if (d.ValueKind != JsonValueKind.Object) throw Problem(file, 0, 0, path, "must be an object");
                var hash = String(d, "hash", path, file);
                var bundle = Required(d, "bundle", JsonValueKind.Object, path, file);
                definitions[hash] = new DefinitionRecord(hash, String(d, "workflow", path, file), Int(d, "version", path, file), Encoding.UTF8.GetBytes(bundle.GetRawText()));
            }

            var job = ReadJob(Required(root, "job", JsonValueKind.Object, "", file), "job", file);
            foreach (var j in job.Tree())
            {
                if (!definitions.ContainsKey(j.Job.DefinitionHash))
                {
                    throw Problem(file, 0, 0, "definitions", $"the definition {j.Job.DefinitionHash} of job {j.Job.JobId} is not in the export");
                }
            }

            return new JobRecording { Root = job, Definitions = definitions, File = file };
        }
    }

    private static RecordedJob ReadJob(JsonElement j, string path, string file)
    {
        var jobId = JobIdOf(String(j, "job_id", path, file), path + ".job_id", file);
        var statusText = String(j, "status", path, file);
        if (!JobStatusNames.TryParse(statusText, out var status)) throw Problem(file, 0, 0, path + ".status", $"'{statusText}' is not a job status");
        var events = new List<EventEnvelope>();
        var i = 0;
        var prev = EventChain.GenesisHash.ToArray();
        foreach (var e in Required(j, "events", JsonValueKind.Array, path, file).EnumerateArray())
        {
            var at = $"{path}.events[{i++}]";
            if (e.ValueKind != JsonValueKind.Object) throw Problem(file, 0, 0, at, "must be an object");
            var seq = Long(e, "seq", at, file);
            if (seq != events.Count + 1) throw Problem(file, 0, 0, at + ".seq", $"is {seq}; the events of a job are numbered 1, 2, 3… without a gap (expected {events.Count + 1})");
            var eventJob = String(e, "job_id", at, file);
            if (eventJob != jobId.Value) throw Problem(file, 0, 0, at + ".job_id", $"'{eventJob}' is not the job the event is listed under ({jobId})");
            var payload = Required(e, "payload", JsonValueKind.Object, at, file);
            var fields = new EventEnvelope(jobId, seq, String(e, "type", at, file), Time(e, "ts", at, file), Array.Empty<byte>(), Hex(e, "hash", at, file), Hex(e, "prev_hash", at, file))
            {
                StepId = OptionalString(e, "step_id", at, file),
                Visit = OptionalInt(e, "visit", at, file),
                Attempt = OptionalInt(e, "attempt", at, file),
                Scope = OptionalString(e, "scope", at, file),
                Agent = OptionalString(e, "agent", at, file),
                PromptHash = OptionalString(e, "prompt_hash", at, file),
                Model = OptionalString(e, "model", at, file),
                Policy = OptionalString(e, "policy", at, file),
                TraceId = OptionalString(e, "trace_id", at, file),
                SpanId = OptionalString(e, "span_id", at, file),
            };

            // The chain the store keeps, checked as audit verify checks it: an event edited in the file (a payload key
            // added, a value changed, an event removed or moved) is not the event the job recorded, and is refused.
            if (!fields.PrevHash.AsSpan().SequenceEqual(prev))
            {
                throw Problem(file, 0, 0, at + ".prev_hash", $"job {jobId}, event {seq} ({fields.Type}): the hash chain breaks here: prev_hash is not the hash of the event before it; the export was edited after it was written");
            }

            var envelope = Stored(payload).Select(bytes => WithPayload(fields, bytes)).FirstOrDefault(c => EventChain.ComputeHash(prev, c).AsSpan().SequenceEqual(c.Hash))
                ?? throw Problem(file, 0, 0, at, $"job {jobId}, event {seq} ({fields.Type}): the hash chain breaks here: the event does not match its hash; it was changed after the job recorded it (the export was edited)");
            prev = envelope.Hash;
            events.Add(envelope);
        }

        if (events.Count == 0 || events[0].Type != EventTypes.JobSubmitted)
        {
            throw Problem(file, 0, 0, path + ".events", $"the log of job {jobId} must start with {EventTypes.JobSubmitted}");
        }

        if (status.IsTerminal() && !events.Any(e => e.Type is EventTypes.JobCompleted or EventTypes.JobFailed or EventTypes.JobCancelled))
        {
            throw Problem(file, 0, 0, path + ".events", $"the log of job {jobId} ends at event {events.Count}, before the job's end (it is {statusText}): its last events were removed from the export");
        }

        var reason = OptionalString(j, "reason", path, file);
        Agrees(jobId, status, reason, events, path, file);

        JobSubmittedPayload submitted;
        try
        {
            submitted = events[0].GetPayload<JobSubmittedPayload>();
        }
        catch (JsonException e)
        {
            throw Problem(file, 0, 0, path + ".events[0].payload", "is not a JobSubmitted payload: " + e.Message);
        }

        var children = new List<RecordedJob>();
        i = 0;
        foreach (var c in Required(j, "children", JsonValueKind.Array, path, file).EnumerateArray())
        {
            var at = $"{path}.children[{i++}]";
            if (c.ValueKind != JsonValueKind.Object) throw Problem(file, 0, 0, at, "must be an object");
            children.Add(ReadJob(c, at, file));
        }

        var parent = OptionalString(j, "parent_job_id", path, file);
        var last = events[^1];
        var record = new JobRecord
        {
            JobId = jobId,
            Workflow = String(j, "workflow", path, file),
            Version = Int(j, "version", path, file),
            Tenant = String(j, "tenant", path, file),
            Status = status,
            Reason = reason,
            Submitter = String(j, "submitter", path, file),
            ParentJobId = parent is null ? null : JobIdOf(parent, path + ".parent_job_id", file),
            RootJobId = JobIdOf(String(j, "root_job_id", path, file), path + ".root_job_id", file),
            DefinitionHash = String(j, "definition_hash", path, file),
            TraceId = String(j, "trace_id", path, file),
            Priority = Int(j, "priority", path, file),
            CreatedAt = Time(j, "created_at", path, file),
            UpdatedAt = Time(j, "updated_at", path, file),
            LastSeq = last.Seq,
            HeadHash = last.Hash,
        };
        // The job's fields outside its events are not hashed: they must say what its JobSubmitted event (which is) says.
        foreach (var (name, value, recorded) in new[]
        {
            ("workflow", record.Workflow, submitted.Workflow), ("version", record.Version.ToString(CultureInfo.InvariantCulture), submitted.Version.ToString(CultureInfo.InvariantCulture)),
            ("definition_hash", record.DefinitionHash, submitted.DefinitionHash), ("tenant", record.Tenant, submitted.Tenant),
        })
        {
            if (value != recorded)
            {
                throw Problem(file, 0, 0, $"{path}.{name}", $"is '{value}', but job {jobId} recorded '{recorded}' when it was submitted (its JobSubmitted event, which its hash chain covers): the export was edited");
            }
        }

        return new RecordedJob(record, events, children);
    }

    /// <summary>
    /// Checks that a job's <c>status</c> and <c>reason</c>, which its hash chain does not cover, are what its events (which
    /// it does) make them, as the store derives them when it writes the job: a job whose events end in <c>JobCompleted</c>,
    /// <c>JobFailed</c> or <c>JobCancelled</c> has that status and that event's reason; one whose events do not end has
    /// no terminal status, and the status its events leave it in (<c>queued</c> until a step is scheduled, then
    /// <c>running</c>, or <c>waiting_approval</c> while an approval is pending).
    /// </summary>
    private static void Agrees(JobId jobId, JobStatus status, string? reason, List<EventEnvelope> events, string path, string file)
    {
        JobState derived;
        try
        {
            derived = JobStateReducer.Apply(JobStateReducer.Start(events[0]), events.Skip(1));
        }
        catch (Exception e) when (e is InvalidDataException or JsonException or InvalidOperationException or ArgumentException or KeyNotFoundException or FormatException or NotSupportedException)
        {
            throw Problem(file, 0, 0, path + ".events", $"the events of job {jobId} cannot be read as a job's log: {e.Message}");
        }

        var end = events.LastOrDefault(e => e.Type is EventTypes.JobCompleted or EventTypes.JobFailed or EventTypes.JobCancelled);
        var evidence = end is null ? $"its {events.Count} events (which its hash chain covers) do not end it and leave it {derived.Status.ToWire()}"
            : $"its event {end.Seq} ({end.Type}, which its hash chain covers) ended it {derived.Status.ToWire()}";
        if (derived.Status != status)
        {
            throw Problem(file, 0, 0, path + ".status", $"is '{status.ToWire()}', but job {jobId} is {derived.Status.ToWire()}: {evidence}; the export was edited");
        }

        if (!string.Equals(derived.Reason, reason, StringComparison.Ordinal))
        {
            throw Problem(file, 0, 0, path + ".reason", $"is {(reason is null ? "null" : $"'{reason}'")}, but job {jobId} has {(derived.Reason is null ? "no reason" : $"the reason '{derived.Reason}'")}: {evidence}; the export was edited");
        }
    }

    /// <summary>What a JSON reader's error says without the character of the file it quotes first (<c>'x' is invalid after a value</c>).</summary>
    private static string Unquoted(string message)
    {
        var end = message.Length > 3 && message[0] == '\'' ? message.IndexOf("' ", 2, StringComparison.Ordinal) : -1;
        return end is > 0 and <= 12 ? "a character" + message[(end + 1)..] : message;
    }

    /// <summary>
    /// The stored forms a payload read from an export may have had, the bytes its event's hash covers, most likely first:
    /// the payload as the file holds it (an export writes it as stored); then, for a file whose payloads were indented and
    /// unescaped (exports of earlier versions), the payload written again as the store writes it: compact, text escaped
    /// by the serializer's default encoder, and timestamps as its formatter writes them (a <c>+</c> of their offset unescaped).
    /// </summary>
    private static IEnumerable<byte[]> Stored(JsonElement payload)
    {
        var raw = Encoding.UTF8.GetBytes(payload.GetRawText());
        yield return raw;
        var seen = new List<byte[]> { raw };
        foreach (var timestamps in new[] { true, false })
        {
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            using (var w = new Utf8JsonWriter(buffer))
            {
                WriteStored(w, payload, timestamps);
            }

            var bytes = buffer.WrittenSpan.ToArray();
            if (seen.Any(b => b.AsSpan().SequenceEqual(bytes))) continue;
            seen.Add(bytes);
            yield return bytes;
        }
    }

    /// <summary>Writes a value as the store's serializer does; with <paramref name="timestamps"/>, a string that is a timestamp with an offset unescaped.</summary>
    private static void WriteStored(Utf8JsonWriter w, JsonElement value, bool timestamps)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
                w.WriteStartObject();
                foreach (var p in value.EnumerateObject())
                {
                    w.WritePropertyName(p.Name);
                    WriteStored(w, p.Value, timestamps);
                }

                w.WriteEndObject();
                break;
            case JsonValueKind.Array:
                w.WriteStartArray();
                foreach (var item in value.EnumerateArray()) WriteStored(w, item, timestamps);
                w.WriteEndArray();
                break;
            case JsonValueKind.String when timestamps && value.GetString() is { } text && Timestamp().IsMatch(text):
                w.WriteRawValue("\"" + text + "\"", skipInputValidation: true);
                break;
            default:
                value.WriteTo(w);
                break;
        }
    }

    /// <summary>A timestamp as the serializer formats a <see cref="DateTimeOffset"/> (round trip, with its offset).</summary>
    [System.Text.RegularExpressions.GeneratedRegex(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d$")]
    private static partial System.Text.RegularExpressions.Regex Timestamp();

    private static EventEnvelope WithPayload(EventEnvelope e, byte[] payload) => new(e.JobId, e.Seq, e.Type, e.Timestamp, payload, e.Hash, e.PrevHash)
    {
        StepId = e.StepId, Visit = e.Visit, Attempt = e.Attempt, Scope = e.Scope, Agent = e.Agent, PromptHash = e.PromptHash,
        Model = e.Model, Policy = e.Policy, TraceId = e.TraceId, SpanId = e.SpanId,
    };

    private static JsonElement Required(JsonElement o, string name, JsonValueKind kind, string path, string file)
    {
        var at = path.Length == 0 ? name : $"{path}.{name}";
        if (!o.TryGetProperty(name, out var value)) throw Problem(file, 0, 0, at, "missing");
        if (value.ValueKind != kind) throw Problem(file, 0, 0, at, $"must be {Describe(kind)}, not {Describe(value.ValueKind)}");
        return value;
    }

    private static string String(JsonElement o, string name, string path, string file) => Required(o, name, JsonValueKind.String, path, file).GetString()!;

    private static string? OptionalString(JsonElement o, string name, string path, string file)
    {
        if (!o.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        return value.ValueKind == JsonValueKind.String ? value.GetString() : throw Problem(file, 0, 0, $"{path}.{name}", $"must be a string, not {Describe(value.ValueKind)}");
    }

    private static long Long(JsonElement o, string name, string path, string file)
        => Required(o, name, JsonValueKind.Number, path, file).TryGetInt64(out var v) ? v : throw Problem(file, 0, 0, $"{path}.{name}", "must be an integer");

    private static int Int(JsonElement o, string name, string path, string file)
        => Required(o, name, JsonValueKind.Number, path, file).TryGetInt32(out var v) ? v : throw Problem(file, 0, 0, $"{path}.{name}", "must be an integer");

    private static int? OptionalInt(JsonElement o, string name, string path, string file)
    {
        if (!o.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        return value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var v) ? v : throw Problem(file, 0, 0, $"{path}.{name}", "must be an integer");
    }

    private static DateTimeOffset Time(JsonElement o, string name, string path, string file)
    {
        var text = String(o, name, path, file);
        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t)
            ? t
            : throw Problem(file, 0, 0, $"{path}.{name}", $"'{text}' is not a timestamp (like 2026-11-22T10:12:33.120Z)");
    }

    private static byte[] Hex(JsonElement o, string name, string path, string file)
    {
        var text = String(o, name, path, file);
        try
        {
            return Convert.FromHexString(text);
        }
        catch (FormatException)
        {
            throw Problem(file, 0, 0, $"{path}.{name}", "is not a hex hash");
        }
    }

    private static JobId JobIdOf(string text, string path, string file)
    {
        try
        {
            return JobId.Parse(text);
        }
        catch (FormatException e)
        {
            throw Problem(file, 0, 0, path, e.Message);
        }
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };

    private static void Nullable(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null) w.WriteNull(name);
        else w.WriteString(name, value);
    }

    private static string Timestamp(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    private static OrdoValidationException Problem(string file, int line, int column, string path, string message)
        => new([new ValidationProblem(file, line, column, path, message)]);
}
