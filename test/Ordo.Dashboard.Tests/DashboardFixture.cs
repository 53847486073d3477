using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Ordo.Server.Auth;
using Ordo.Server.Hosting;
using Ordo.Storage;
using Ordo.Workflows;

namespace Ordo.Dashboard.Tests;

/// <summary>
/// One real server for the test class — <see cref="ServerHost"/>, the host of <c>ordo serve</c>, on SQLite and a loopback
/// port — and one headless Chromium (Debian's, installed by test/tools/install-chromium.sh).
/// </summary>
public sealed class DashboardFixture : IAsyncLifetime
{
    public const string Hello = "ordo: 1\nworkflow: hello\nversion: 1\ndescription: says hello\nsteps:\n  - { id: greet, transform: { set: { greeting: hi } }, next: sign }\n  - { id: sign, transform: { set: { signed: true } } }\n";
    public const string TwoPerson = "ordo: 1\nworkflow: payout\nversion: 2\ndescription: pays out after two approvers\nsteps:\n  - { id: check, transform: { set: { checked: true } }, next: ok }\n  - { id: ok, approval: { role: approver, count: 2 }, next: done }\n  - { id: done, transform: { set: { paid: true } } }\n";
    public const string Chromium = "/usr/bin/chromium";

    /// <summary>A one-step classification in two versions: version 2 (the canary of the release) answers against the label's contract.</summary>
    public static string Triage(int version) => version == 1 ? TriageOf(1, "classifier") : TriageOf(version, "classifier_next");

    private static string TriageOf(int version, string agent) => $$"""
        ordo: 1
        workflow: triage
        version: {{version}}
        description: labels a ticket
        artifacts:
          label: { schema: { type: object, required: [label], properties: { label: { type: string } } } }
        agents:
          {{agent}}: { kind: llm, version: {{version}}, tier: fast, prompt: classify, output: label }
        steps:
          - { id: classify, agent: {{agent}} }
        """;

    private readonly string _dir = Path.Combine(Path.GetTempPath(), "ordo-dashboard-tests", Guid.NewGuid().ToString("N"));
    private WebApplication? _app;
    private IPlaywright? _playwright;

    public Uri BaseAddress { get; private set; } = null!;
    public IBrowser Browser { get; private set; } = null!;
    public HttpClient Http { get; private set; } = null!;
    public Dictionary<string, string> Keys { get; } = new(StringComparer.Ordinal);

    public async Task InitializeAsync()
    {
        EnsureChromium();
        Directory.CreateDirectory(_dir);
        // alice submits and may approve (so she sees the inbox, where her own job is refused); bob and carol approve; olga operates.
        // triage runs a scripted model; its release gives version 2 half of the jobs by name until it rolls itself back.
        File.WriteAllText(Path.Combine(_dir, "ordo.yaml"), """
            models:
              fast: { provider: scripted, fixtures: fixtures.yaml, price: { input_per_1k: 0.001, output_per_1k: 0.002 } }
            prompts: prompts/
            tenants:
              acme:
                roles: { alice: [submitter, approver], bob: [approver], carol: [approver], olga: [operator] }
            releases:
              triage:
                stable: 1
                canary: { version: 2, share: 0.5, min_jobs: 2, rollback_when: { gate_rejection_rate: 0.25 } }
            """);
        File.WriteAllText(Path.Combine(_dir, "fixtures.yaml"), """
            responses:
              - { agent: classifier_next, content: '{"label": 7}', usage: { input_tokens: 180, output_tokens: 12 } }
              - { agent: classifier, content: '{"label": "billing"}', usage: { input_tokens: 200, output_tokens: 20 } }
            """);
        Directory.CreateDirectory(Path.Combine(_dir, "prompts"));
        File.WriteAllText(Path.Combine(_dir, "prompts", "classify.md"), "Label the ticket: billing, sales or support.\n");
        var workflows = new List<WorkflowDefinition>();
        foreach (var (name, text) in new[] { ("hello.yaml", Hello), ("payout.yaml", TwoPerson), ("triage-v1.yaml", Triage(1)), ("triage-v2.yaml", Triage(2)) })
        {
            File.WriteAllText(Path.Combine(_dir, name), text);
            workflows.Add(await WorkflowLoader.LoadFileAsync(Path.Combine(_dir, name)));
        }

        _app = ServerHost.Build(new ServeSettings
        {
            Urls = "http://127.0.0.1:0", DatabasePath = Path.Combine(_dir, "ordo.db"), Project = workflows[0].Project, Workflows = workflows, Workers = 2,
            ShutdownGrace = TimeSpan.FromSeconds(1),
        });
        await _app.StartAsync();
        BaseAddress = new Uri(_app.Urls.First());
        var store = (IApiKeyStore)_app.Services.GetRequiredService<IOrdoStore>();
        foreach (var who in new[] { "alice", "bob", "carol", "olga" })
        {
            var key = ApiKeys.NewKey();
            await store.CreateApiKeyAsync(new ApiKeyRecord(ApiKeys.NewKeyId(), "acme", who, ApiKeys.Hash(key), DateTimeOffset.UnixEpoch));
            Keys[who] = key;
        }

        Http = new HttpClient { BaseAddress = BaseAddress };
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium, Headless = true, Args = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        });
    }

    /// <summary>Runs the same install script as ./test.sh when the browser is missing (it needs root).</summary>
    private static void EnsureChromium()
    {
        if (File.Exists(Chromium)) return;
        var root = RepositoryRoot();
        using var install = Process.Start(new ProcessStartInfo("bash", [Path.Combine(root, "test", "tools", "install-chromium.sh")]) { UseShellExecute = false })!;
        install.WaitForExit();
        if (install.ExitCode != 0 || !File.Exists(Chromium)) throw new InvalidOperationException("Chromium is missing: run test/tools/install-chromium.sh as root");
    }

    public static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Ordo.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Ordo.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>A fresh browser context (its own session storage) and page, signed in with a key.</summary>
    public async Task<(IBrowserContext Context, IPage Page, List<string> Errors)> SignInAsync(string who)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = BaseAddress.ToString(), ViewportSize = new ViewportSize { Width = 1280, Height = 860 } });
        context.SetDefaultTimeout(10_000);
        var page = await context.NewPageAsync();
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text); };
        page.PageError += (_, e) => errors.Add(e);
        await page.GotoAsync("/");
        await page.GetByTestId("api-key-input").FillAsync(Keys[who]);
        await page.GetByTestId("api-key-submit").ClickAsync();
        await Assertions.Expect(page.GetByTestId("nav-jobs")).ToBeVisibleAsync();
        return (context, page, errors);
    }

    public async Task<(int Status, JsonElement Json)> SendAsync(HttpMethod method, string path, string who, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Keys[who]);
        if (body is not null) request.Content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
        using var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, text.StartsWith('{') ? JsonDocument.Parse(text).RootElement.Clone() : default);
    }

    public async Task<string> SubmitAsync(string who, string workflow)
    {
        var (status, json) = await SendAsync(HttpMethod.Post, "/v1/jobs", who, new { workflow, input = new { } });
        Assert.Equal(201, status);
        return json.GetProperty("job_id").GetString()!;
    }

    public async Task<string> WaitForStatusAsync(string who, string jobId, string wanted)
    {
        var last = "";
        for (var i = 0; i < 200; i++)
        {
            last = (await SendAsync(HttpMethod.Get, $"/v1/jobs/{jobId}", who)).Json.GetProperty("status").GetString()!;
            if (last == wanted) return last;
            await Task.Delay(50);
        }

        throw new TimeoutException($"job {jobId} is {last}, not {wanted}");
    }

    /// <summary>Saves a screenshot under docs/dashboard/ only when ORDO_UPDATE_SCREENSHOTS=1 (a test run must not change the tree).</summary>
    public static async Task ScreenshotAsync(IPage page, string name)
    {
        if (Environment.GetEnvironmentVariable("ORDO_UPDATE_SCREENSHOTS") != "1") return;
        var dir = Path.Combine(RepositoryRoot(), "docs", "dashboard");
        Directory.CreateDirectory(dir);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(dir, name + ".png"), FullPage = true });
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null) await Browser.CloseAsync();
        _playwright?.Dispose();
        Http?.Dispose();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        try
        {
            Directory.Delete(_dir, true);
        }
        catch (IOException)
        {
        }
    }
}
