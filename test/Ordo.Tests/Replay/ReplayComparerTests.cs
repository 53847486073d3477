using System.Text;
using System.Text.Json.Nodes;
using Ordo.Events;
using Ordo.Replay;
using Ordo.State;
using Ordo.Storage;

namespace Ordo.Tests.Replay;

/// <summary>How <see cref="ReplayComparer"/> compares a recorded log with its replay, event for event.</summary>
public sealed class ReplayComparerTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 22, 10, 0, 0, TimeSpan.Zero);
    private static readonly JobId Id = JobId.New(T0);

    private static NewEvent Submitted(string extra = "") => new(EventTypes.JobSubmitted, T0, Encoding.UTF8.GetBytes(
        $$"""{"workflow":"w","version":1,"definition_hash":"sha256:x","tenant":"default","submitter":"a","input":{},"trace_id":"t","priority":0{{extra}}}"""));

    private static NewEvent Step(string type, string step, string payload) => new(type, T0, Encoding.UTF8.GetBytes(payload)) { StepId = step, Visit = 1, Attempt = 1 };

    private static NewEvent Scheduled(string step) => Step(EventTypes.StepScheduled, step, """{"kind":"transform","reason":"entry"}""");

    private static NewEvent Succeeded(string step, string output) => Step(EventTypes.StepSucceeded, step, $$"""{"output":{{output}},"duration_ms":1}""");

    private static NewEvent Completed() => new(EventTypes.JobCompleted, T0, Encoding.UTF8.GetBytes("{}"));

    private static RecordedJob Job(params NewEvent[] events)
    {
        var sealedEvents = EventChain.Seal(Id, 0, EventChain.GenesisHash, events);
        var record = new JobRecord
        {
            JobId = Id, Workflow = "w", Version = 1, Tenant = "default", Status = JobStatus.Queued, Submitter = "a", RootJobId = Id,
            DefinitionHash = "sha256:x", TraceId = "t", CreatedAt = T0, UpdatedAt = T0, LastSeq = sealedEvents.Length, HeadHash = sealedEvents[^1].Hash,
        };
        return new RecordedJob(record, sealedEvents, []);
    }

    [Fact]
    public void Canonical_OrdersObjectMembers_ButNotArrayItems()
    {
        Assert.Equal(ReplayComparer.Canonical(JsonNode.Parse("""{"b":[1,2],"a":{"y":1,"x":2}}""")), ReplayComparer.Canonical(JsonNode.Parse("""{"a":{"x":2,"y":1},"b":[1,2]}""")));
        Assert.NotEqual(ReplayComparer.Canonical(JsonNode.Parse("""{"b":[1,2]}""")), ReplayComparer.Canonical(JsonNode.Parse("""{"b":[2,1]}""")));
    }

    [Fact]
    public void OutputsWithMembersInAnotherOrder_Match()
    {
        var recorded = Job(Submitted(), Scheduled("s"), Succeeded("s", """{"a":1,"b":{"c":[1,2],"d":null}}"""), Completed());
        var replayed = Job(Submitted(), Scheduled("s"), Succeeded("s", """{"b":{"d":null,"c":[1,2]},"a":1}"""), Completed());
        var swapped = Job(Submitted(), Scheduled("s"), Succeeded("s", """{"a":1,"b":{"c":[2,1],"d":null}}"""), Completed());

        Assert.Null(ReplayComparer.FirstDivergence(recorded, replayed));
        Assert.Equal("output", ReplayComparer.FirstDivergence(recorded, swapped)?.What);
    }

    [Fact]
    public void EventsThatDifferOnlyInAField_NameTheField_NotTheSameSummaryTwice()
    {
        var recorded = Job(Submitted(""","shadow_of":"0123456789abcdef0123456789abcdef","dry_run":true"""), Scheduled("s"));
        var replayed = Job(Submitted(""","dry_run":true"""), Scheduled("s"));

        var d = ReplayComparer.FirstDivergence(recorded, replayed);

        Assert.NotNull(d);
        Assert.Equal(("(job)", "status"), (d.Step, d.What));
        Assert.Equal("JobSubmitted payload.shadow_of=\"0123456789abcdef0123456789abcdef\"", d.Recorded);
        Assert.Equal("JobSubmitted payload.shadow_of=(absent)", d.Replayed);
    }

    [Fact]
    public void ARecordingThatStops_IsComparedAsFarAsItGoes()
    {
        var queued = Job(Submitted(), Scheduled("s"));
        var halfway = Job(Submitted(), Scheduled("s"), Succeeded("s", "1"));
        var replayed = Job(Submitted(), Scheduled("s"), Succeeded("s", "1"), Scheduled("t"), Succeeded("t", "2"), Completed());
        var other = Job(Submitted(), Scheduled("s"), Succeeded("s", "3"), Completed());

        Assert.False(ReplayComparer.Ended(queued));
        Assert.Null(ReplayComparer.FirstDivergence(queued, replayed));
        Assert.Null(ReplayComparer.FirstDivergence(halfway, replayed));
        Assert.Equal(("s", "output"), (ReplayComparer.FirstDivergence(halfway, other)?.Step, ReplayComparer.FirstDivergence(halfway, other)?.What));
        // What the recording holds must be replayed: a replay that stops before it diverges.
        Assert.Equal("(nothing)", ReplayComparer.FirstDivergence(halfway, Job(Submitted(), Scheduled("s")))?.Replayed);
        // A recording that holds the job's end is compared whole.
        var ended = Job(Submitted(), Scheduled("s"), Succeeded("s", "1"), Completed());
        Assert.True(ReplayComparer.Ended(ended));
        Assert.NotNull(ReplayComparer.FirstDivergence(ended, replayed));
    }

    private static NewEvent Requested(string step, string call, string hash = "sha256:r")
        => Step(EventTypes.ModelCallRequested, step, $$"""{"call_id":"{{call}}","tier":"fast","provider":"scripted","model":"m","max_output_tokens":null,"reserved_tokens":null,"reserved_cost":null,"request_hash":"{{hash}}"}""");

    private static NewEvent Answered(string step, string call, string content = "ok")
        => Step(EventTypes.ModelCallSucceeded, step, $$"""{"call_id":"{{call}}","tier":"fast","provider":"scripted","model":"m","content":"{{content}}","input_tokens":1,"output_tokens":1,"cost":0,"duration_ms":3}""");

    private static NewEvent Started(int delivery) => Step(EventTypes.StepStarted, "classify", $$"""{"worker":"w{{delivery}}","delivery":{{delivery}}}""");

    [Fact]
    public void ACallAskedAgainByARedelivery_IsComparedAsTheRedeliveryMadeIt()
    {
        // Delivery 1 asked m1 (answered) and m2, and its worker was killed during m2; delivery 2 reused m1's answer and asked m2 again.
        var recorded = Job(Submitted(), Scheduled("classify"), Started(1), Requested("classify", "classify#1.1.m1"), Answered("classify", "classify#1.1.m1"),
            Requested("classify", "classify#1.1.m2"), Started(2), Requested("classify", "classify#1.1.m2"), Answered("classify", "classify#1.1.m2"),
            Succeeded("classify", "1"), Completed());
        var replayed = Job(Submitted(), Scheduled("classify"), Started(1), Requested("classify", "classify#1.1.m1"), Answered("classify", "classify#1.1.m1"),
            Requested("classify", "classify#1.1.m2"), Answered("classify", "classify#1.1.m2"), Succeeded("classify", "1"), Completed());
        // Killed during m1 itself: asked twice, answered once.
        var killedEarly = Job(Submitted(), Scheduled("classify"), Started(1), Requested("classify", "classify#1.1.m1"), Started(2),
            Requested("classify", "classify#1.1.m1"), Answered("classify", "classify#1.1.m1"), Requested("classify", "classify#1.1.m2"), Answered("classify", "classify#1.1.m2"),
            Succeeded("classify", "1"), Completed());
        // Answered in delivery 1, but asked again with another request (the engine reuses an answer only for the same request).
        var askedAnew = Job(Submitted(), Scheduled("classify"), Started(1), Requested("classify", "classify#1.1.m1", "sha256:old"), Answered("classify", "classify#1.1.m1", "old"),
            Started(2), Requested("classify", "classify#1.1.m1"), Answered("classify", "classify#1.1.m1"), Requested("classify", "classify#1.1.m2"), Answered("classify", "classify#1.1.m2"),
            Succeeded("classify", "1"), Completed());

        Assert.Null(ReplayComparer.FirstDivergence(recorded, replayed));
        Assert.Null(ReplayComparer.FirstDivergence(killedEarly, replayed));
        Assert.Null(ReplayComparer.FirstDivergence(askedAnew, replayed));
        // The last delivery's calls are still compared: another request there diverges.
        var changed = Job(Submitted(), Scheduled("classify"), Started(1), Requested("classify", "classify#1.1.m1"), Answered("classify", "classify#1.1.m1"),
            Requested("classify", "classify#1.1.m2", "sha256:other"), Answered("classify", "classify#1.1.m2"), Succeeded("classify", "1"), Completed());
        Assert.Equal(("classify", "request"), (ReplayComparer.FirstDivergence(recorded, changed)?.Step, ReplayComparer.FirstDivergence(recorded, changed)?.What));
    }

    private static NewEvent Cancelled(string by) => new(EventTypes.JobCancelled, T0, Encoding.UTF8.GetBytes($$"""{"reason":"stop","by":"{{by}}"}"""));

    [Fact]
    public void AJobCancelledFromOutside_IsComparedUpToItsCancellation_AShadowsEndWhole()
    {
        var replayed = Job(Submitted(), Scheduled("s"), Succeeded("s", "1"), Scheduled("t"), Succeeded("t", "2"), Completed());

        // Cancelled while queued, mid-run, and by a kill switch (which blocks the step it stops in the same write).
        Assert.Null(ReplayComparer.FirstDivergence(Job(Submitted(), Cancelled("alice")), replayed));
        Assert.Null(ReplayComparer.FirstDivergence(Job(Submitted(), Scheduled("s"), Succeeded("s", "1"), Scheduled("t"), Cancelled("alice")), replayed));
        var killed = Job(Submitted(), Scheduled("s"), Succeeded("s", "1"), Scheduled("t"),
            Step(EventTypes.StepBlocked, "t", """{"by":"kill_switch","reason":"stopped by kill switch t","rule":"t","approval_id":null}"""), Cancelled("kill_switch"));
        Assert.Null(ReplayComparer.FirstDivergence(killed, replayed));
        // What was recorded before the cancellation is still compared.
        Assert.Equal(("s", "output"), (ReplayComparer.FirstDivergence(Job(Submitted(), Scheduled("s"), Succeeded("s", "3"), Cancelled("alice")), replayed)?.Step,
            ReplayComparer.FirstDivergence(Job(Submitted(), Scheduled("s"), Succeeded("s", "3"), Cancelled("alice")), replayed)?.What));
        // A shadow job's end at an approval is the engine's: compared whole.
        Assert.NotNull(ReplayComparer.FirstDivergence(Job(Submitted(), Scheduled("s"), Succeeded("s", "1"), Cancelled("shadow")), replayed));
    }
}
