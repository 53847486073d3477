using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Ordo.Agents;
using Ordo.Engine;
using Ordo.Events;
using Ordo.State;
using Ordo.Workflows;

namespace Ordo.Sqlite.Tests;

public sealed class HostingTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "ordo-host-" + Guid.NewGuid().ToString("N"));

    public HostingTests() => Directory.CreateDirectory(_dir);

    [Fact]
    public async Task AddOrdo_UseSqlite_RunsJobsInTheHost_WithCodeAgentsFromTheContainer()
    {
        var workflow = WorkflowBuilder.Create("greet", 1)
            .CodeAgent("greeter", typeof(Greeter).FullName!, output: "greeting")
            .Step("greet", s => s.Agent("greeter", new { name = "${ input.name }" }))
            .Build();

        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddSingleton(new Salutation("Hello"));
        builder.Services.AddOrdo(o => o.Workers = 2)
            .UseSqlite(Path.Combine(_dir, "ordo.db"))
            .AddCodeAgent<Greeter>()
            .AddWorkflow(workflow);
        using var host = builder.Build();
        await host.StartAsync();

        var runtime = host.Services.GetRequiredService<OrdoRuntime>();
        var job = await runtime.SubmitAsync(workflow, Ordo.Json.Of(new { name = "Ada" }));
        var state = await runtime.WaitAsync(job.JobId).WaitAsync(TimeSpan.FromSeconds(30));
        await host.StopAsync();

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("Hello, Ada", state.Artifacts["greeting"].Verified!.Value.GetProperty("text").GetString());
        Assert.True(File.Exists(Path.Combine(_dir, "ordo.db")));
        Assert.True((await AuditVerifier.VerifyAsync(runtime.Store, job.JobId)).Intact);
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

    public sealed record Salutation(string Word);

    public sealed class Greeter(Salutation salutation) : ICodeAgent
    {
        public ValueTask<JsonElement> InvokeAsync(AgentContext context, CancellationToken cancellationToken)
            => ValueTask.FromResult(Ordo.Json.Of(new { text = $"{salutation.Word}, {context.Input.GetProperty("name").GetString()}" }));
    }
}
