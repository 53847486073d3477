// An ASP.NET Core app of your own that hosts Ordo the way `ordo serve` does: AddOrdo (the runtime and its workers),
// AddOrdoServer (API keys, roles, rate limits), MapOrdoApi (the /v1 API), MapOrdoDashboard (the dashboard at /).
// Its project (tenants, roles, quotas) is ordo.yaml and its workflows are the YAML files of workflows/, beside it.
using Ordo.Workflows;

var builder = WebApplication.CreateBuilder(args);
var root = builder.Configuration["Ordo:Project"] ?? AppContext.BaseDirectory;
var project = await WorkflowLoader.LoadProjectAsync(Path.Combine(root, "ordo.yaml"), null, CancellationToken.None);
var workflows = new List<WorkflowDefinition>();
foreach (var file in Directory.EnumerateFiles(Path.Combine(root, "workflows"), "*.yaml").Order(StringComparer.Ordinal))
{
    workflows.Add(await WorkflowLoader.LoadFileAsync(file));
}

var ordo = builder.Services.AddOrdo(o => o.Workers = Environment.ProcessorCount)
    .UseSqlite(builder.Configuration["Ordo:Database"] ?? "ordo.db");
foreach (var workflow in workflows) ordo.AddWorkflow(workflow);
builder.Services.AddOrdoServer(o =>
{
    foreach (var (name, tenant) in project.Tenants) o.Tenants[name] = tenant;
    foreach (var workflow in workflows) o.Workflows.Add(workflow);
});
builder.Services.AddOrdoTelemetry().AddOrdoPrometheus();

var app = builder.Build();
app.UseOrdoCors();
app.MapOrdoApi();
app.MapOrdoDashboard();
app.MapOrdoMetrics();
app.MapGet("/hello", () => "this app also serves its own endpoints beside Ordo's");
await app.RunAsync();

/// <summary>The app's entry point, public so that tests can host it (WebApplicationFactory).</summary>
public partial class Program;
