using System.Text.Json;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Commands;

/// <summary>
/// Commands on jobs of a tree (a parent and its sub-workflow child), through real <c>ordo</c> processes: resuming the
/// child resumes the tree, <c>show</c> says where the tree waits, <c>approve</c> on the parent says where to decide, and no
/// command that names its database reads an <c>ordo.yaml</c> of the working directory.
/// </summary>
public sealed class JobTreeCommandTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    private static (string Parent, string Child) StartTree(Workspace w)
    {
        w.Write("ordo.yaml", "tenants:\n  default: { roles: { bob: [approver] } }\n");
        w.Write("child.yaml", "ordo: 1\nworkflow: child\nversion: 1\nsteps:\n  - { id: check, approval: { role: approver }, next: done }\n  - { id: done, transform: { set: { checked: true } } }\n");
        w.Write("parent.yaml", "ordo: 1\nworkflow: parent\nversion: 1\nsteps:\n  - { id: sub, workflow: child@1, next: after }\n  - { id: after, transform: { set: { after: true } } }\n");
        return ("parent.yaml", "child.yaml");
    }

    private static async Task<(string ParentId, string ChildId)> RunToChildApprovalAsync(Workspace w)
    {
        StartTree(w);
        var run = await OrdoProcess.RunAsync(w.Root, Patience, "run", "parent.yaml", "--db", w.Db, "--as", "alice", "--json");
        Assert.True(run.ExitCode == 4, run.ToString());
        var json = run.Json();
        var parent = json.GetProperty("job_id").GetString()!;
        var child = json.GetProperty("approvals").EnumerateArray().Single().GetProperty("job_id").GetString()!;
        return (parent, child);
    }

    [Fact]
    public async Task ResumingTheChild_ResumesItsTree_BothComplete()
    {
        using var w = Workspace.Create();
        var (parent, child) = await RunToChildApprovalAsync(w);
        var approved = await OrdoProcess.RunAsync(w.Root, Patience, "approve", child, "--as", "bob", "--db", w.Db);
        Assert.True(approved.ExitCode == 0, approved.ToString());
        Assert.Contains($"ordo resume {child}", approved.Out, StringComparison.Ordinal);

        var resumed = await OrdoProcess.RunAsync(w.Root, Patience, "resume", child, "--db", w.Db, "--json");
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        Assert.Equal("completed", resumed.Json().GetProperty("status").GetString());
        var jobs = (await OrdoProcess.RunAsync(w.Root, Patience, "jobs", "--db", w.Db, "--json")).Json().EnumerateArray().ToList();
        Assert.All(jobs, j => Assert.Equal("completed", j.GetProperty("status").GetString()));
        Assert.Contains(jobs, j => j.GetProperty("job_id").GetString() == parent);
    }

    [Fact]
    public async Task ShowOfAParentWaitingOnItsChild_SaysWaitingApproval_AndListsTheChildsApproval_AndApproveOnTheParentSaysWhere()
    {
        using var w = Workspace.Create();
        var (parent, child) = await RunToChildApprovalAsync(w);

        var show = (await OrdoProcess.RunAsync(w.Root, Patience, "show", parent, "--db", w.Db, "--json")).Json();
        Assert.Equal("waiting_approval", show.GetProperty("status").GetString());
        var approval = show.GetProperty("approvals").EnumerateArray().Single();
        Assert.Equal(child, approval.GetProperty("job_id").GetString());
        Assert.Equal("pending", approval.GetProperty("status").GetString());

        var human = await OrdoProcess.RunAsync(w.Root, Patience, "show", parent, "--db", w.Db);
        Assert.Contains("waiting for approval in a job under this one", human.Out, StringComparison.Ordinal);
        Assert.Contains(child, human.Out, StringComparison.Ordinal);

        var onParent = await OrdoProcess.RunAsync(w.Root, Patience, "approve", parent, "--as", "bob", "--db", w.Db);
        Assert.Equal(2, onParent.ExitCode);
        Assert.Contains($"it waits for its child job {child}", onParent.Err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("models:\n  fast: { provider: scripted, fixtures: nope.yaml }\n")]
    [InlineData("tools: [ this is not: yaml\n")]
    public async Task ABrokenOrdoYamlInTheWorkingDirectory_DoesNotStopCommandsThatNameTheirDatabase(string broken)
    {
        using var w = Workspace.Create();
        var (parent, child) = await RunToChildApprovalAsync(w);
        var cwd = w.PathOf("elsewhere");
        w.Write("elsewhere/ordo.yaml", broken);

        foreach (var args in new[]
        {
            new[] { "jobs" }, ["show", parent], ["events", child], ["audit", "verify", "--all"], ["kill", "list"],
            ["approve", child, "--as", "bob"], ["resume", parent],
        })
        {
            var result = await OrdoProcess.RunAsync(cwd, Patience, [.. args, "--db", w.Db]);
            Assert.True(result.ExitCode == 0, $"ordo {string.Join(' ', args)}\n{result}");
        }

        // Without --db the ordo.yaml there is what says where the database is: a broken one is an input error that says so.
        var unnamed = await OrdoProcess.RunAsync(cwd, Patience, "jobs");
        Assert.Equal(2, unnamed.ExitCode);
        Assert.Contains("read for its storage settings", unnamed.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task KillListAndClear_OnADatabaseThatDoesNotExist_ExitTwo_AndCreateNothing()
    {
        using var w = Workspace.Create();
        foreach (var args in new[] { new[] { "kill", "list" }, ["kill", "clear", "tool:x"] })
        {
            var result = await OrdoProcess.RunAsync(w.Root, Patience, [.. args, "--db", w.PathOf("typo.db")]);
            Assert.True(result.ExitCode == 2, result.ToString());
            Assert.Contains("there is no Ordo database", result.Err, StringComparison.Ordinal);
        }

        Assert.False(File.Exists(w.PathOf("typo.db")));
        Assert.Equal(0, (await OrdoProcess.RunAsync(w.Root, Patience, "kill", "set", "tool:x", "--db", w.PathOf("new.db"))).ExitCode);
    }

    [Fact]
    public async Task AnEmptyAsIsRefused_AndNamesDifferingOnlyInCaseAreOnePerson()
    {
        using var w = Workspace.Create();
        w.Write("ordo.yaml", "tenants:\n  default: { roles: { bob: [approver], carol: [approver] } }\n");
        w.Write("two.yaml", "ordo: 1\nworkflow: two\nversion: 1\nsteps:\n  - { id: ok, approval: { role: approver, count: 2 } }\n");
        var run = await OrdoProcess.RunAsync(w.Root, Patience, "run", "two.yaml", "--db", w.Db, "--as", "alice", "--json");
        Assert.Equal(4, run.ExitCode);
        var job = run.Json().GetProperty("job_id").GetString()!;

        var empty = await OrdoProcess.RunAsync(w.Root, Patience, "approve", job, "--as", "", "--db", w.Db);
        Assert.Equal(2, empty.ExitCode);
        Assert.Contains("--as needs an identity", empty.Err, StringComparison.Ordinal);
        Assert.Equal(2, (await OrdoProcess.RunAsync(w.Root, Patience, "approve", job, "--as", "Alice", "--db", w.Db)).ExitCode);
        Assert.Equal(2, (await OrdoProcess.RunAsync(w.Root, Patience, "approve", job, "--as", "ａｌｉｃｅ", "--db", w.Db)).ExitCode);
        Assert.Equal(2, (await OrdoProcess.RunAsync(w.Root, Patience, "approve", job, "--as", "alice\u200b", "--db", w.Db)).ExitCode);
        Assert.Equal(0, (await OrdoProcess.RunAsync(w.Root, Patience, "approve", job, "--as", "Bob", "--db", w.Db)).ExitCode);
        var again = await OrdoProcess.RunAsync(w.Root, Patience, "approve", job, "--as", "ｂｏｂ", "--db", w.Db);
        Assert.Equal(2, again.ExitCode);
        Assert.Contains("already approved", again.Err, StringComparison.Ordinal);
        Assert.Equal(0, (await OrdoProcess.RunAsync(w.Root, Patience, "approve", job, "--as", "carol", "--db", w.Db)).ExitCode);
        var status = (await OrdoProcess.RunAsync(w.Root, Patience, "resume", job, "--db", w.Db, "--json")).Json().GetProperty("status").GetString();
        Assert.Equal("completed", status);
    }
}
