using System.Text;
using Ordo.Events;

namespace Ordo.Tests.Events;

public sealed class EventChainTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 22, 10, 0, 0, 123, TimeSpan.Zero);

    private static NewEvent Event(string step, string payload = """{"x":1}""") =>
        new(EventTypes.StepSucceeded, T0, Encoding.UTF8.GetBytes(payload)) { StepId = step, Visit = 1, Attempt = 1 };

    [Fact]
    public void Seal_ChainsEachEventToItsPredecessor()
    {
        var id = JobId.New(T0);
        var sealedEvents = EventChain.Seal(id, 0, EventChain.GenesisHash, [Event("a"), Event("b"), Event("c")]);
        Assert.Equal([1L, 2L, 3L], sealedEvents.Select(e => e.Seq));
        Assert.Equal(new byte[32], sealedEvents[0].PrevHash);
        Assert.Equal(sealedEvents[0].Hash, sealedEvents[1].PrevHash);
        Assert.Equal(sealedEvents[1].Hash, sealedEvents[2].PrevHash);
        foreach (var e in sealedEvents)
        {
            Assert.Equal(e.Hash, EventChain.ComputeHash(e.PrevHash, e));
            Assert.Equal(32, e.Hash.Length);
        }
    }

    [Fact]
    public void Hash_CoversEveryStoredField()
    {
        var id = JobId.New(T0);
        var prev = new byte[32];
        var baseline = EventChain.Seal(id, 4, prev, [Event("a")])[0].Hash;
        var variants = new List<NewEvent>
        {
            Event("b"),
            Event("a", """{"x":2}"""),
            new(EventTypes.StepFailed, T0, Encoding.UTF8.GetBytes("""{"x":1}""")) { StepId = "a", Visit = 1, Attempt = 1 },
            new(EventTypes.StepSucceeded, T0.AddMilliseconds(1), Encoding.UTF8.GetBytes("""{"x":1}""")) { StepId = "a", Visit = 1, Attempt = 1 },
            new(EventTypes.StepSucceeded, T0, Encoding.UTF8.GetBytes("""{"x":1}""")) { StepId = "a", Visit = 2, Attempt = 1 },
            new(EventTypes.StepSucceeded, T0, Encoding.UTF8.GetBytes("""{"x":1}""")) { StepId = "a", Visit = 1, Attempt = 2 },
            new(EventTypes.StepSucceeded, T0, Encoding.UTF8.GetBytes("""{"x":1}""")) { StepId = "a", Visit = 1, Attempt = 1, Scope = "p#1" },
            new(EventTypes.StepSucceeded, T0, Encoding.UTF8.GetBytes("""{"x":1}""")) { StepId = "a", Visit = 1, Attempt = 1, Agent = "x@1" },
            new(EventTypes.StepSucceeded, T0, Encoding.UTF8.GetBytes("""{"x":1}""")) { StepId = "a", Visit = 1, Attempt = 1, PromptHash = "sha256:1" },
            new(EventTypes.StepSucceeded, T0, Encoding.UTF8.GetBytes("""{"x":1}""")) { StepId = "a", Visit = 1, Attempt = 1, Model = "m" },
            new(EventTypes.StepSucceeded, T0, Encoding.UTF8.GetBytes("""{"x":1}""")) { StepId = "a", Visit = 1, Attempt = 1, Policy = "p@1" },
            new(EventTypes.StepSucceeded, T0, Encoding.UTF8.GetBytes("""{"x":1}""")) { StepId = null, Visit = 1, Attempt = 1 },
        };
        var hashes = variants.Select(v => Convert.ToHexString(EventChain.Seal(id, 4, prev, [v])[0].Hash)).ToList();
        Assert.DoesNotContain(Convert.ToHexString(baseline), hashes);
        Assert.Equal(hashes.Count, hashes.Distinct().Count());
        Assert.NotEqual(baseline, EventChain.Seal(id, 5, prev, [Event("a")])[0].Hash);
        Assert.NotEqual(baseline, EventChain.Seal(JobId.New(T0.AddDays(1)), 4, prev, [Event("a")])[0].Hash);
        Assert.NotEqual(baseline, EventChain.Seal(id, 4, Enumerable.Repeat((byte)1, 32).ToArray(), [Event("a")])[0].Hash);
    }

    [Fact]
    public void Timestamps_AreKeptToTheMillisecond()
    {
        var e = new NewEvent(EventTypes.JobCompleted, T0.AddTicks(4_567), "{}"u8.ToArray());
        Assert.Equal(T0, e.Timestamp);
    }

    [Fact]
    public void LargePayloads_HashLikeSmallOnes()
    {
        var id = JobId.New(T0);
        var big = "{\"text\":\"" + new string('x', 100_000) + "\"}";
        var e = EventChain.Seal(id, 0, EventChain.GenesisHash, [Event("a", big)])[0];
        Assert.Equal(e.Hash, EventChain.ComputeHash(e.PrevHash, e));
    }
}
