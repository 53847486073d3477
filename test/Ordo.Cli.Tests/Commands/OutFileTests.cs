using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Commands;

/// <summary>
/// What <c>--out</c> may replace, for every command that has it (export, audit checkpoint, graph): never the store's
/// database or its WAL, nor a file that is not an earlier document of the same kind.
/// </summary>
public sealed class OutFileTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task CheckpointAndGraph_RefuseToWriteOverTheDatabaseOrTheProjectsFiles_AndChangeNothing()
    {
        using var w = Workspace.WithSample();
        await CliRunner.RunExpectingAsync(0, SampleJob.Args(w, "run", "--quiet"));
        var env = new Dictionary<string, string> { ["ORDO_AUDIT_KEY"] = w.PathOf("keys/audit-key.pem") };
        var fingerprint = w.DbFingerprint();
        var config = await File.ReadAllTextAsync(w.PathOf("sample/ordo.yaml"));

        foreach (var target in new[] { w.Db, w.Db + "-wal", w.PathOf("sample/ordo.yaml") })
        {
            var checkpoint = await OrdoProcess.RunAsync(w.Root, Timeout, env, "audit", "checkpoint", "--db", w.Db, "--out", target);
            Assert.True(checkpoint.ExitCode == 2, checkpoint.ToString());
            Assert.Contains("--out: ", checkpoint.Err, StringComparison.Ordinal);
            var graph = await OrdoProcess.RunAsync(w.Root, Timeout, env, "graph", SampleJob.Workflow(w), "--db", w.Db, "--out", target);
            Assert.True(graph.ExitCode == 2, graph.ToString());
            Assert.Contains("nothing was written", graph.Err, StringComparison.OrdinalIgnoreCase);
        }

        Assert.Equal(fingerprint, w.DbFingerprint());
        Assert.Equal(config, await File.ReadAllTextAsync(w.PathOf("sample/ordo.yaml")));
        Assert.False(File.Exists(w.PathOf("keys/audit-key.pem")), "the key is made only once the checkpoint can be written");

        // An earlier document of the same kind is replaced, as before.
        foreach (var (args, file) in new[] { (new[] { "audit", "checkpoint", "--db", w.Db }, "cp.json"), (["graph", SampleJob.Workflow(w)], "graph.mmd") })
        {
            for (var i = 0; i < 2; i++)
            {
                var r = await OrdoProcess.RunAsync(w.Root, Timeout, env, [.. args, "--out", w.PathOf(file)]);
                Assert.True(r.ExitCode == 0, r.ToString());
            }
        }
    }
}
