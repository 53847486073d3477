using static Ordo.Storage.Conformance.StoreFixtures;

namespace Ordo.Storage.Conformance;

/// <summary>Release records: one per workflow, kind and version, the first write winning.</summary>
public abstract partial class StoreConformanceTests
{
    [Fact]
    public async Task ReleaseRecords_FirstWriteWins_AndAreListedPerWorkflow()
    {
        var first = new ReleaseRecord("triage", ReleaseRecordKinds.RolledBack, 3, T0, "gate_rejection_rate 0.5 > 0.2", """{"jobs":10}""");
        var again = first with { At = T0.AddMinutes(1), Reason = "another judge" };
        var other = new ReleaseRecord("billing", ReleaseRecordKinds.RolledBack, 2, T0.AddMinutes(2), "failure_rate 0.3 > 0.2", """{"jobs":20}""");

        Assert.True(await Store.AddReleaseRecordAsync(first));
        Assert.False(await Store.AddReleaseRecordAsync(again));
        Assert.True(await Store.AddReleaseRecordAsync(other));

        var triage = Assert.Single(await Store.ListReleaseRecordsAsync("triage"));
        Assert.Equal(first, triage);
        Assert.Equal(["triage", "billing"], (await Store.ListReleaseRecordsAsync()).Select(r => r.Workflow));
        Assert.Empty(await Store.ListReleaseRecordsAsync("nothing"));
    }
}
