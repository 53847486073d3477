using System.Buffers.Binary;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using System.Text;
using OpenTelemetry;
using OpenTelemetry.Trace;
using Ordo.Events;
using Ordo.State;
using Ordo.Telemetry;
using Ordo.Tests.Governance;

namespace Ordo.Tests.Telemetry;

/// <summary>
/// Spans, metrics and the trace ids in the log for one job: an llm agent step on a scripted tier, then a code tool step.
/// Other tests run at the same time and make spans and measurements too: everything is filtered by the job's trace or
/// this workflow's name.
/// </summary>
public sealed class OrdoTelemetryTests
{
    private static async Task<(GovernanceHarness Harness, JobState State)> RunJobAsync(string workflow)
    {
        var h = new GovernanceHarness();
        h.Write("ordo.yaml", """
            models:
              fast: { provider: scripted, fixtures: fixtures.yaml, price: { input_per_1k: 0.50, output_per_1k: 1.50 } }
            tools: [tools.yaml]
            """);
        h.Write("fixtures.yaml", """
            responses:
              - { agent: drafter, content: '{"draft": "v1"}', usage: { input_tokens: 1000, output_tokens: 200 } }
            """);
        h.Write("tools.yaml", "tools:\n  report.publish: { kind: code, effect: write }\n");
        h.AddCodeTool("report.publish", inv => inv.Args);
        h.Write("workflow.yaml", $$"""
            ordo: 1
            workflow: {{workflow}}
            version: 1
            artifacts:
              draft: {}
            agents:
              drafter: { kind: llm, tier: fast, output: draft }
            steps:
              - { id: draft, agent: drafter, next: publish }
              - { id: publish, tool: report.publish, args: { report: "${ artifacts.draft }" } }
            """);
        var state = await h.RunAsync(await h.LoadAsync());
        Assert.Equal(JobStatus.Completed, state.Status);
        return (h, state);
    }

    [Fact]
    public async Task Job_RecordsJobStepAndCallSpans_WithGenAiAttributes()
    {
        var exported = new List<Activity>();
        using (Sdk.CreateTracerProviderBuilder().AddSource(OrdoTelemetry.Name).AddInMemoryExporter(exported).Build())
        {
            var (h, state) = await RunJobAsync("telemetry-spans");
            await using var _ = h;
            List<Activity> spans;
            lock (exported) spans = exported.Where(a => a.TraceId.ToHexString() == state.TraceId).ToList();

            var job = Assert.Single(spans, s => s.DisplayName == "job telemetry-spans");
            Assert.Equal(default, job.ParentSpanId);
            Assert.Equal(state.RootSpanId, job.SpanId.ToHexString());
            Assert.Equal(state.JobId.Value, job.GetTagItem("ordo.job.id"));

            var draft = Assert.Single(spans, s => s.DisplayName == "step draft");
            var publish = Assert.Single(spans, s => s.DisplayName == "step publish");
            Assert.Equal(job.SpanId, draft.ParentSpanId);
            Assert.Equal(job.SpanId, publish.ParentSpanId);
            Assert.Equal("agent", draft.GetTagItem("ordo.step.kind"));
            Assert.Equal("succeeded", draft.GetTagItem("ordo.step.outcome"));
            Assert.Equal(1, draft.GetTagItem("ordo.step.attempt"));

            var chat = Assert.Single(spans, s => s.DisplayName == "chat scripted");
            Assert.Equal(draft.SpanId, chat.ParentSpanId);
            Assert.Equal(ActivityKind.Client, chat.Kind);
            Assert.Equal("chat", chat.GetTagItem("gen_ai.operation.name"));
            Assert.Equal("scripted", chat.GetTagItem("gen_ai.provider.name"));
            Assert.Equal("scripted", chat.GetTagItem("gen_ai.request.model"));
            Assert.NotNull(chat.GetTagItem("gen_ai.response.model"));
            Assert.Equal(1000L, chat.GetTagItem("gen_ai.usage.input_tokens"));
            Assert.Equal(200L, chat.GetTagItem("gen_ai.usage.output_tokens"));

            var tool = Assert.Single(spans, s => s.DisplayName == "execute_tool report.publish");
            Assert.Equal(publish.SpanId, tool.ParentSpanId);
            Assert.Equal("execute_tool", tool.GetTagItem("gen_ai.operation.name"));
            Assert.Equal("report.publish", tool.GetTagItem("gen_ai.tool.name"));
            Assert.Equal("ok", tool.GetTagItem("ordo.tool.outcome"));

            // The log carries the spans: a call's events its call span, the step's commit the step span; the chain verifies.
            var events = await h.EventsAsync(state.JobId);
            Assert.All(events.Where(e => e.TraceId is not null), e => Assert.Equal(state.TraceId, e.TraceId));
            Assert.Equal(chat.SpanId.ToHexString(), events.Single(e => e.Type == EventTypes.ModelCallSucceeded).SpanId);
            Assert.Equal(tool.SpanId.ToHexString(), events.Single(e => e.Type == EventTypes.ToolCallSucceeded).SpanId);
            Assert.Equal(draft.SpanId.ToHexString(), events.Single(e => e.Type == EventTypes.StepSucceeded && e.StepId == "draft").SpanId);
            Assert.Equal(job.SpanId.ToHexString(), events.Single(e => e.Type == EventTypes.JobSubmitted).SpanId);
            Assert.True((await AuditVerifier.VerifyAsync(h.Store, state.JobId)).Intact);
        }
    }

    [Fact]
    public async Task Job_RecordsStepLatencyTokensAndCost()
    {
        const string Workflow = "telemetry-metrics";
        var measurements = new List<(string Name, double Value, Dictionary<string, object?> Tags)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == OrdoTelemetry.Name) l.EnableMeasurementEvents(instrument);
        };
        void Add(Instrument i, double v, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var d = new Dictionary<string, object?>();
            foreach (var t in tags) d[t.Key] = t.Value;
            lock (measurements) measurements.Add((i.Name, v, d));
        }

        listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Add(i, v, tags));
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Add(i, v, tags));
        listener.Start();

        var (h, state) = await RunJobAsync(Workflow);
        await using var _ = h;
        List<(string Name, double Value, Dictionary<string, object?> Tags)> mine;
        lock (measurements) mine = measurements.Where(m => Equals(m.Tags.GetValueOrDefault("ordo.workflow"), Workflow) || Equals(m.Tags.GetValueOrDefault("gen_ai.tool.name"), "report.publish")).ToList();

        var steps = mine.Where(m => m.Name == "ordo.step.duration").ToList();
        Assert.Contains(steps, m => Equals(m.Tags["ordo.step.kind"], "agent") && Equals(m.Tags["ordo.step.outcome"], "succeeded") && m.Value >= 0);
        Assert.Contains(steps, m => Equals(m.Tags["ordo.step.kind"], "tool"));
        Assert.Equal(1000, mine.Single(m => m.Name == "ordo.model.tokens" && Equals(m.Tags["gen_ai.token.type"], "input")).Value);
        Assert.Equal(200, mine.Single(m => m.Name == "ordo.model.tokens" && Equals(m.Tags["gen_ai.token.type"], "output")).Value);
        Assert.Equal(0.8, mine.Single(m => m.Name == "ordo.model.cost").Value, 6);
        Assert.Contains(mine, m => m.Name == "ordo.tool.duration" && Equals(m.Tags["ordo.tool.outcome"], "ok"));
        Assert.Contains(mine, m => m.Name == "ordo.jobs.ended" && Equals(m.Tags["ordo.job.status"], "completed"));
        Assert.Contains(mine, m => m.Name == "ordo.jobs.submitted");
        Assert.DoesNotContain(mine, m => m.Tags.ContainsKey("ordo.job.id") || m.Tags.ContainsKey("ordo.tenant"));
        List<(string Name, double Value, Dictionary<string, object?> Tags)> waits;
        lock (measurements) waits = measurements.Where(m => m.Name == "ordo.queue.wait").ToList();
        Assert.NotEmpty(waits);
        Assert.All(waits, w => Assert.True(w.Value >= 0));
    }

    [Fact]
    public void EventWithoutTrace_HashesAsBeforeTraceFieldsExisted()
    {
        // The encoding of an event as logs written before trace ids were stored: every field, the payload, nothing after.
        var t = new DateTimeOffset(2026, 11, 22, 10, 0, 0, 123, TimeSpan.Zero);
        var id = new JobId("job-1");
        var payload = Encoding.UTF8.GetBytes("""{"x":1}""");
        var e = new NewEvent(EventTypes.StepSucceeded, t, payload) { StepId = "a", Visit = 1, Attempt = 2 };
        var sealedEvent = EventChain.Seal(id, 0, EventChain.GenesisHash, [e])[0];

        var old = new List<byte>(new byte[32]);
        void Str(string? s)
        {
            var b = s is null ? null : Encoding.UTF8.GetBytes(s);
            Int32(b?.Length ?? -1);
            if (b is not null) old.AddRange(b);
        }

        void Int32(int v)
        {
            var b = new byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(b, v);
            old.AddRange(b);
        }

        void Int64(long v)
        {
            var b = new byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(b, v);
            old.AddRange(b);
        }

        void NullableInt(int? v)
        {
            old.Add(v.HasValue ? (byte)1 : (byte)0);
            Int32(v ?? 0);
        }

        Str("job-1");
        Int64(1);
        Str(EventTypes.StepSucceeded);
        Str("a");
        NullableInt(1);
        NullableInt(2);
        Str(null);
        Int64(t.ToUnixTimeMilliseconds());
        Str(null);
        Str(null);
        Str(null);
        Str(null);
        Int32(payload.Length);
        old.AddRange(payload);

        Assert.Equal(SHA256.HashData(old.ToArray()), sealedEvent.Hash);
    }

    [Fact]
    public void TraceIds_AreCoveredByTheHash_WhenPresent()
    {
        var t = new DateTimeOffset(2026, 11, 22, 10, 0, 0, 0, TimeSpan.Zero);
        var id = new JobId("job-2");
        NewEvent Make(string? trace, string? span) => new(EventTypes.StepSucceeded, t, Encoding.UTF8.GetBytes("{}")) { StepId = "a", TraceId = trace, SpanId = span };

        // An old event (no trace) followed by a new one (with a trace) chains and verifies.
        var log = EventChain.Seal(id, 0, EventChain.GenesisHash, [Make(null, null), Make("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")]);
        Assert.Equal(log[1].Hash, EventChain.ComputeHash(log[0].Hash, log[1]));
        Assert.Equal("0af7651916cd43dd8448eb211c80319c", log[1].TraceId);

        var untraced = EventChain.Seal(id, 1, log[0].Hash, [Make(null, null)])[0].Hash;
        var otherSpan = EventChain.Seal(id, 1, log[0].Hash, [Make("0af7651916cd43dd8448eb211c80319c", "00f067aa0ba902b7")])[0].Hash;
        Assert.NotEqual(untraced, log[1].Hash);
        Assert.NotEqual(otherSpan, log[1].Hash);
    }

    [Fact]
    public void JobContext_WithoutRecordedJobSpan_IsDerivedFromTheJobId()
    {
        var id = new JobId("job-3");
        var a = OrdoTelemetry.JobContext(id, "0af7651916cd43dd8448eb211c80319c", null);
        var b = OrdoTelemetry.JobContext(id, "0af7651916cd43dd8448eb211c80319c", null);
        Assert.Equal(a.SpanId, b.SpanId);
        Assert.Equal("0af7651916cd43dd8448eb211c80319c", a.TraceId.ToHexString());
        Assert.Equal("b7ad6b7169203331", OrdoTelemetry.JobContext(id, "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331").SpanId.ToHexString());
    }
}
