using Ordo.Engine;
using Ordo.Events;
using Ordo.State;
using Ordo.Workflows;

namespace Ordo.Sqlite.Tests;

/// <summary>
/// Claims share the queue between tenants: a tenant that floods it does not hold back one that submits a few jobs after
/// it. Measured by the order in which jobs complete, never by the clock.
/// </summary>
public sealed class FairnessTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "ordo-fair-" + Guid.NewGuid().ToString("N"));

    public FairnessTests() => Directory.CreateDirectory(_dir);

    [Fact]
    public async Task ATenantThatFloodsTheQueue_DoesNotStarveOneThatSubmitsAfterIt()
    {
        var workflow = WorkflowBuilder.Create("tiny", 1).Step("only", s => s.Transform("done", "${ true }")).Build();
        var completed = new CompletionOrder();
        var options = new OrdoRuntimeOptions { Workers = 4, PollInterval = TimeSpan.FromMilliseconds(5) };
        options.Observers.Add(completed);
        await using var store = new SqliteOrdoStore(Path.Combine(_dir, "ordo.db"));
        await using var runtime = new OrdoRuntime(store, options);

        // Everything is queued before any worker runs, acme's 2,000 jobs first: a first-come queue would run beta's last.
        var tenantOf = new Dictionary<JobId, string>();
        foreach (var (tenant, count) in new[] { ("acme", 2000), ("beta", 20) })
        {
            for (var i = 0; i < count; i += 100)
            {
                var batch = await Task.WhenAll(Enumerable.Range(0, Math.Min(100, count - i)).Select(_ => runtime.SubmitAsync(workflow, null, new SubmitOptions { Tenant = tenant })));
                foreach (var job in batch) tenantOf[job.JobId] = tenant;
            }
        }

        await runtime.RunAsync(new RunRequest { UntilIdle = true }).WaitAsync(TimeSpan.FromMinutes(5));

        var order = completed.Jobs;
        Assert.Equal(2020, order.Count);
        var acme = order.Select((job, position) => (job, position)).Where(p => tenantOf[p.job] == "acme").Select(p => p.position).ToList();
        var beta = order.Select((job, position) => (job, position)).Where(p => tenantOf[p.job] == "beta").Select(p => p.position).ToList();
        Assert.Equal(2000, acme.Count);
        Assert.Equal(20, beta.Count);
        // Every job of beta ended while acme still had most of its queue ahead of it.
        var acmeDoneBeforeBetaWas = acme.Count(p => p < beta.Max());
        Assert.True(acmeDoneBeforeBetaWas < 200, $"beta's last job ended after {acmeDoneBeforeBetaWas} of acme's");
        // Beta's typical wait, in jobs completed before its own, is a small fraction of acme's.
        Assert.True(Median(beta) * 10 < Median(acme), $"median position: beta {Median(beta)}, acme {Median(acme)}");
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static int Median(List<int> positions) => positions.Order().ElementAt(positions.Count / 2);

    /// <summary>The jobs in the order their completion was committed.</summary>
    private sealed class CompletionOrder : IJobObserver
    {
        private readonly Lock _gate = new();
        private readonly List<JobId> _jobs = [];

        public List<JobId> Jobs
        {
            get
            {
                lock (_gate) return [.. _jobs];
            }
        }

        public void OnCommitted(JobState state, IReadOnlyList<EventEnvelope> events)
        {
            if (!events.Any(e => e.Type == EventTypes.JobCompleted)) return;
            lock (_gate) _jobs.Add(state.JobId);
        }
    }
}
