using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Commands;

/// <summary>Runs the sample twice on one database, once with human output and once with <c>--json</c>; the read-only commands are tested on these jobs.</summary>
public sealed class SampleRunFixture : IAsyncLifetime
{
    internal Workspace Workspace { get; } = Workspace.WithSample();

    internal CliResult HumanRun { get; private set; } = null!;

    internal CliResult JsonRun { get; private set; } = null!;

    /// <summary>The job of the human run (the older one).</summary>
    internal string HumanJobId { get; private set; } = "";

    /// <summary>The job of the JSON run (the newest one).</summary>
    internal string JsonJobId { get; private set; } = "";

    public async Task InitializeAsync()
    {
        HumanRun = await CliRunner.RunAsync(SampleJob.Args(Workspace, "run"));
        HumanJobId = HumanRun.ExitCode == 0 ? SampleJob.JobIdFromRunOutput(HumanRun) : "";
        JsonRun = await CliRunner.RunAsync(SampleJob.Args(Workspace, "run", "--json"));
        JsonJobId = JsonRun.ExitCode == 0 ? JsonRun.Json().GetProperty("job_id").GetString()! : "";
    }

    public Task DisposeAsync()
    {
        Workspace.Dispose();
        return Task.CompletedTask;
    }
}
