using Microsoft.Data.Sqlite;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Commands;

/// <summary><c>ordo doctor</c> on a healthy store, after a worker was killed holding a lease, and with a job nothing can move.</summary>
public sealed class DoctorCommandTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    private static string WriteSlowProject(Workspace w)
    {
        w.Write("ordo.yaml", $"plugins: [\"{TestPaths.TestPluginDll}\"]\n");
        return w.Write("slow.yaml", """
            ordo: 1
            workflow: slow
            version: 1
            agents:
              sleeper: { kind: code, type: "Ordo.TestPlugins.Sleeper" }
            steps:
              - { id: one, agent: sleeper, input: { ms: 3000 }, next: two }
              - { id: two, agent: sleeper, input: { ms: 10 } }
            """);
    }

    [Fact]
    public async Task AHealthyStore_IsOk_ALeaseOfAKilledWorker_IsReported_UntilItIsTakenOver()
    {
        using var w = Workspace.Create();
        var workflow = WriteSlowProject(w);
        var healthy = await OrdoProcess.RunAsync(w.Root, Patience, "doctor", "--db", w.Db, "--json");
        Assert.Equal(2, healthy.ExitCode); // no database yet: nothing is created
        Assert.Equal(0, (await OrdoProcess.RunAsync(w.Root, Patience, "db", "migrate", "--db", w.Db)).ExitCode);
        Assert.Equal(0, (await OrdoProcess.RunAsync(w.Root, Patience, "doctor", "--db", w.Db)).ExitCode);

        var job = (await OrdoProcess.RunAsync(w.Root, Patience, "submit", workflow, "--db", w.Db)).OutLines.Single();
        using (var worker = OrdoProcess.Start(w.Root, "worker", "--db", w.Db, "--concurrency", "1"))
        {
            // The first step sleeps 3 s: kill the worker while it holds the lease.
            await WaitForAsync(async () => (await OrdoProcess.RunAsync(w.Root, Patience, "events", job, "--db", w.Db)).Out.Contains("StepStarted", StringComparison.Ordinal));
            worker.Kill();
        }

        var sick = await OrdoProcess.RunAsync(w.Root, Patience, "doctor", "--db", w.Db, "--json");
        Assert.True(sick.ExitCode == 3, sick.ToString());
        var report = sick.Json();
        Assert.False(report.GetProperty("ok").GetBoolean());
        Assert.Equal(8, report.GetProperty("schema_version").GetInt32());
        var lease = report.GetProperty("leases").EnumerateArray().Single();
        Assert.Equal(job, lease.GetProperty("job_id").GetString());
        Assert.Contains("process has ended", lease.GetProperty("problem").GetString(), StringComparison.Ordinal);

        var resumed = await OrdoProcess.RunAsync(w.Root, Patience, "resume", job, "--db", w.Db);
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        Assert.Equal(0, (await OrdoProcess.RunAsync(w.Root, Patience, "doctor", "--db", w.Db)).ExitCode);
    }

    [Fact]
    public async Task AJobThatNothingCanMove_IsReported_AndCancellingItMakesTheStoreHealthy()
    {
        using var w = Workspace.Create();
        var workflow = WriteSlowProject(w);
        var job = (await OrdoProcess.RunAsync(w.Root, Patience, "submit", workflow, "--db", w.Db)).OutLines.Single();

        // Someone deleted its work item by hand: the job is queued, and nothing will ever run it.
        using (var c = new SqliteConnection($"Data Source={w.Db};Pooling=False"))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "DELETE FROM work_items";
            Assert.Equal(1, cmd.ExecuteNonQuery());
        }

        var sick = await OrdoProcess.RunAsync(w.Root, Patience, "doctor", "--db", w.Db);
        Assert.True(sick.ExitCode == 3, sick.ToString());
        Assert.Contains($"job {job} (slow@1, tenant default) is queued with no work item, no pending approval and no running child job", sick.Out, StringComparison.Ordinal);
        Assert.Contains($"ordo cancel {job}", sick.Out, StringComparison.Ordinal);

        Assert.Equal(0, (await OrdoProcess.RunAsync(w.Root, Patience, "cancel", job, "--db", w.Db, "--reason", "stranded")).ExitCode);
        Assert.Equal(0, (await OrdoProcess.RunAsync(w.Root, Patience, "doctor", "--db", w.Db)).ExitCode);
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition)
    {
        for (var i = 0; i < 600; i++)
        {
            if (await condition()) return;
            await Task.Delay(100);
        }

        Assert.Fail("the condition never held");
    }
}
