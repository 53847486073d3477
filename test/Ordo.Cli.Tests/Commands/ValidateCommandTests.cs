using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Commands;

public sealed class ValidateCommandTests
{
    [Fact]
    public async Task Validate_Sample_ExitsZeroAndCreatesNothing()
    {
        using var w = Workspace.WithSample();
        var r = await CliRunner.RunExpectingAsync(0, "validate", SampleJob.Workflow(w), "--input", SampleJob.Input(w), "--db", w.Db);
        Assert.StartsWith("ok: invoice-reconciliation@1", r.Out, StringComparison.Ordinal);
        Assert.False(File.Exists(w.Db));
    }

    [Fact]
    public async Task AProblemInTheProject_IsReportedAlone_NotAlsoAsThePluginsAgentsBeingUnknown()
    {
        using var w = Workspace.Create();
        w.Write("ordo.yaml", $"plugins: [\"{TestPaths.TestPluginDll}\"]\nmodels:\n  fast: {{ provider: scripted, fixtures: fx.yaml }}\n");
        w.Write("fx.yaml", "responses:\n  - { agent: a, rounds: 1, content: '{}' }\n");
        var workflow = w.Write("wf.yaml", "ordo: 1\nworkflow: w\nversion: 1\nagents:\n  s: { kind: code, type: \"Ordo.TestPlugins.Sleeper\" }\nsteps:\n  - { id: x, agent: s }\n");
        var r = await CliRunner.RunExpectingAsync(2, "validate", workflow);
        Assert.Contains("fx.yaml:2:", r.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("not registered", r.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ValidateJson_Sample_DescribesTheWorkflow()
    {
        using var w = Workspace.WithSample();
        var j = (await CliRunner.RunExpectingAsync(0, "validate", SampleJob.Workflow(w), "--json")).Json();
        Assert.True(j.GetProperty("valid").GetBoolean());
        Assert.Equal("invoice-reconciliation@1", j.GetProperty("workflow").GetString());
        Assert.Equal(5, j.GetProperty("steps").GetInt32());
        Assert.StartsWith("sha256:", j.GetProperty("definition_hash").GetString(), StringComparison.Ordinal);
    }
}
