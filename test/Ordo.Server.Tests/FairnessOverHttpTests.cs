using Ordo.Engine;
using Ordo.Events;
using Ordo.State;

namespace Ordo.Server.Tests;

/// <summary>
/// Fair claiming as the API's clients see it: one tenant floods the queue through <c>POST /v1/jobs</c>, another submits
/// a few jobs after it; the second is served beside the first, not after it. Measured by the order in which jobs
/// complete, never by the clock.
/// </summary>
public sealed class FairnessOverHttpTests
{
    [Fact]
    public async Task ATenantFlooding2000Jobs_DoesNotHoldBackOneSubmitting20AfterIt()
    {
        var completed = new CompletionOrder();
        await using var api = await ApiFixture.StartAsync(o => o.RateLimitPermits = int.MaxValue, workers: false, runtime: o =>
        {
            o.Workers = 4;
            o.Observers.Add(completed);
        });
        var alice = await api.KeyAsync("acme", "alice");
        var gary = await api.KeyAsync("globex", "gary");

        // Everything is queued through the API before any worker runs, acme's 2,000 first: first-come would run globex's last.
        var acmeJobs = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < 2000; i += 50)
        {
            foreach (var id in await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => api.SubmitAsync(alice, "hello")))) acmeJobs.Add(id);
        }

        var globexJobs = (await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => api.SubmitAsync(gary, "hello")))).ToHashSet(StringComparer.Ordinal);
        await api.Runtime.RunAsync(new RunRequest { UntilIdle = true }).WaitAsync(TimeSpan.FromMinutes(5));

        var order = completed.Jobs;
        Assert.Equal(2020, order.Count);
        var acme = order.Select((job, position) => (job, position)).Where(p => acmeJobs.Contains(p.job)).Select(p => p.position).ToList();
        var globex = order.Select((job, position) => (job, position)).Where(p => globexJobs.Contains(p.job)).Select(p => p.position).ToList();
        Assert.Equal(2000, acme.Count);
        Assert.Equal(20, globex.Count);
        // Every job of globex ended while acme still had most of its queue ahead of it.
        var acmeDoneBeforeGlobexWas = acme.Count(p => p < globex.Max());
        Assert.True(acmeDoneBeforeGlobexWas < 200, $"globex's last job ended after {acmeDoneBeforeGlobexWas} of acme's");
        // Globex's median wait, in jobs completed before its own, is bounded by a few rounds of the rotation.
        Assert.True(Median(globex) < 60, $"globex's median position {Median(globex)}");
        Assert.True(Median(globex) * 10 < Median(acme), $"median position: globex {Median(globex)}, acme {Median(acme)}");

        // And through the API, every job of both is completed.
        var listed = await api.SendAsync(HttpMethod.Get, "/v1/jobs?status=completed&limit=500", gary);
        Assert.Equal(20, listed.Json.GetProperty("jobs").GetArrayLength());
    }

    private static int Median(List<int> positions) => positions.Order().ElementAt(positions.Count / 2);

    /// <summary>The jobs in the order their completion was committed.</summary>
    private sealed class CompletionOrder : IJobObserver
    {
        private readonly Lock _gate = new();
        private readonly List<string> _jobs = [];

        public List<string> Jobs
        {
            get
            {
                lock (_gate) return [.. _jobs];
            }
        }

        public void OnCommitted(JobState state, IReadOnlyList<EventEnvelope> events)
        {
            if (!events.Any(e => e.Type == EventTypes.JobCompleted)) return;
            lock (_gate) _jobs.Add(state.JobId.Value);
        }
    }
}
