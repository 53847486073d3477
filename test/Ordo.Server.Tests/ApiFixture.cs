using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Ordo.Configuration;
using Ordo.Engine;
using Ordo.Server;
using Ordo.Server.Auth;
using Ordo.Storage;
using Ordo.Testing;
using Ordo.Workflows;

namespace Ordo.Server.Tests;

/// <summary>
/// The sample app of a user's own (samples/aspnetcore-host, which hosts Ordo through AddOrdo, AddOrdoServer and
/// MapOrdoApi) under <see cref="WebApplicationFactory{TEntryPoint}"/>, on the in-memory store, with this fixture's
/// tenants, roles and workflows in place of the sample's.
/// </summary>
public sealed class ApiFixture : IAsyncDisposable
{
    public const string Hello = "ordo: 1\nworkflow: hello\nversion: 1\ndescription: says hello\nsteps:\n  - { id: greet, transform: { set: { greeting: hi } } }\n";
    public const string TwoPerson = "ordo: 1\nworkflow: payout\nversion: 2\nsteps:\n  - { id: ok, approval: { role: approver, count: 2 }, next: done }\n  - { id: done, transform: { set: { paid: true } } }\n";
    public const string Ops = "ordo: 1\nworkflow: ops\nversion: 1\nsteps:\n  - { id: gate, approval: { role: operator }, next: done }\n  - { id: done, transform: { set: { ok: true } } }\n";
    public const string Typed = "ordo: 1\nworkflow: typed\nversion: 1\ninput: { type: object, required: [amount], properties: { amount: { type: number } } }\nsteps:\n  - { id: a, transform: { set: { x: 1 } } }\n";

    private readonly WebApplicationFactory<Program> _factory;
    private readonly string _dir;

    private ApiFixture(WebApplicationFactory<Program> factory, string dir)
    {
        _factory = factory;
        _dir = dir;
        Client = factory.CreateClient();
        Store = (InMemoryOrdoStore)factory.Services.GetRequiredService<IOrdoStore>();
    }

    public InMemoryOrdoStore Store { get; }

    public HttpClient Client { get; }

    public OrdoRuntime Runtime => _factory.Services.GetRequiredService<OrdoRuntime>();

    public static async Task<ApiFixture> StartAsync(Action<OrdoServerOptions>? configure = null, bool workers = true, Action<OrdoRuntimeOptions>? runtime = null)
    {
        var dir = Path.Combine(Path.GetTempPath(), "ordo-server-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "ordo.yaml"), """
            tenants:
              acme:
                roles: { alice: [submitter], bob: [approver], carol: [approver], olga: [operator], vic: [viewer] }
              globex: {}
            """);
        var definitions = new List<WorkflowDefinition>();
        foreach (var (name, text) in new[] { ("hello.yaml", Hello), ("payout.yaml", TwoPerson), ("typed.yaml", Typed), ("ops.yaml", Ops) })
        {
            File.WriteAllText(Path.Combine(dir, name), text);
            definitions.Add(await WorkflowLoader.LoadFileAsync(Path.Combine(dir, name)));
        }

        var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(web => web.ConfigureTestServices(services =>
        {
            var ordo = services.AddOrdo(o =>
            {
                o.Workers = 2;
                runtime?.Invoke(o);
            }).UseInMemoryStore();
            if (!workers) ordo.WithoutWorkers();
            services.Configure<OrdoServerOptions>(o =>
            {
                o.Tenants.Clear();
                foreach (var (name, tenant) in definitions[0].Project.Tenants) o.Tenants[name] = tenant;
                o.Workflows.Clear();
                foreach (var d in definitions) o.Workflows.Add(d);
                o.EventPollInterval = TimeSpan.FromMilliseconds(20);
                o.StreamKeyRecheck = TimeSpan.FromMilliseconds(50);
                configure?.Invoke(o);
            });
        }));
        return new ApiFixture(factory, dir);
    }

    public async Task<string> KeyAsync(string tenant, string identity)
    {
        var key = ApiKeys.NewKey();
        await Store.CreateApiKeyAsync(new ApiKeyRecord(ApiKeys.NewKeyId(), tenant, identity, ApiKeys.Hash(key), DateTimeOffset.UnixEpoch));
        return key;
    }

    public HttpRequestMessage Request(HttpMethod method, string path, string? key, object? body = null)
    {
        var request = new HttpRequestMessage(method, path);
        if (key is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        if (body is not null) request.Content = new StringContent(body as string ?? JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
        return request;
    }

    public async Task<(int Status, JsonElement Json, HttpResponseMessage Response)> SendAsync(HttpMethod method, string path, string? key, object? body = null, Action<HttpRequestMessage>? edit = null)
    {
        using var request = Request(method, path, key, body);
        edit?.Invoke(request);
        var response = await Client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        var json = text.Length > 0 && (text[0] == '{' || text[0] == '[') ? JsonDocument.Parse(text).RootElement.Clone() : default;
        return ((int)response.StatusCode, json, response);
    }

    public async Task<string> SubmitAsync(string key, string workflow, object? input = null)
    {
        var (status, json, _) = await SendAsync(HttpMethod.Post, "/v1/jobs", key, new { workflow, input = input ?? new { } });
        Assert.Equal(201, status);
        return json.GetProperty("job_id").GetString()!;
    }

    public async Task<JsonElement> WaitForStatusAsync(string key, string jobId, params string[] statuses)
    {
        for (var i = 0; i < 500; i++)
        {
            var (_, json, _) = await SendAsync(HttpMethod.Get, $"/v1/jobs/{jobId}", key);
            if (statuses.Contains(json.GetProperty("status").GetString())) return json;
            await Task.Delay(20);
        }

        throw new TimeoutException($"job {jobId} did not reach {string.Join("/", statuses)}");
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _factory.DisposeAsync();
        try
        {
            Directory.Delete(_dir, true);
        }
        catch (IOException)
        {
        }
    }
}
