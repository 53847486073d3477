using System.Xml.Linq;

namespace Ordo.Server.Tests;

/// <summary><c>GET /v1/jobs/{id}/graph</c>: the job's workflow graph with its path and statuses, per tenant.</summary>
public sealed class JobGraphEndpointTests
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    private static XElement Step(XElement svg, string id) => svg.Descendants(Svg + "g").Single(g => (string?)g.Attribute("data-step-id") == id);

    [Fact]
    public async Task Graph_IsAnSvg_ByDefault_WithEachStepsStatus_AndThePathTaken()
    {
        await using var api = await ApiFixture.StartAsync();
        var alice = await api.KeyAsync("acme", "alice");
        var vic = await api.KeyAsync("acme", "vic");
        var job = await api.SubmitAsync(alice, "payout");
        await api.WaitForStatusAsync(alice, job, "waiting_approval");

        var (status, _, response) = await api.SendAsync(HttpMethod.Get, $"/v1/jobs/{job}/graph", vic);
        Assert.Equal(200, status);
        Assert.Equal("image/svg+xml", response.Content.Headers.ContentType!.MediaType);
        Assert.True(response.Headers.CacheControl?.NoStore);
        var svg = XDocument.Parse(await response.Content.ReadAsStringAsync()).Root!;
        Assert.Equal("job-graph", (string?)svg.Attribute("data-testid"));
        Assert.Equal("img", (string?)svg.Attribute("role"));
        Assert.Equal(job, (string?)svg.Attribute("data-job-id"));
        Assert.Equal("waiting_approval", (string?)Step(svg, "ok").Attribute("data-status"));
        Assert.Contains(Step(svg, "ok").Elements(Svg + "text"), t => t.Value == "status: waiting approval");
        Assert.Equal("not_run", (string?)Step(svg, "done").Attribute("data-status"));
        Assert.Empty(svg.Descendants(Svg + "script"));

        foreach (var who in new[] { "bob", "carol" })
        {
            var key = await api.KeyAsync("acme", who);
            var approval = (await api.SendAsync(HttpMethod.Get, "/v1/approvals", key)).Json.GetProperty("approvals")[0].GetProperty("approval_id").GetString()!;
            Assert.Equal(200, (await api.SendAsync(HttpMethod.Post, $"/v1/jobs/{job}/approvals/{Uri.EscapeDataString(approval)}", key, new { decision = "approve" })).Status);
        }

        await api.WaitForStatusAsync(alice, job, "completed");
        var after = XDocument.Parse(await (await api.SendAsync(HttpMethod.Get, $"/v1/jobs/{job}/graph", vic)).Response.Content.ReadAsStringAsync()).Root!;
        Assert.Equal("succeeded", (string?)Step(after, "done").Attribute("data-status"));
        var taken = after.Descendants(Svg + "g").Where(g => ((string?)g.Attribute("class"))?.Contains(" taken", StringComparison.Ordinal) == true)
            .Select(g => ((string?)g.Attribute("data-from"), (string?)g.Attribute("data-to"))).ToList();
        (string?, string?)[] path = [("#start", "ok"), ("ok", "done"), ("done", "#end")];
        Assert.Equal(path.Order(), taken.Order());
    }

    [Fact]
    public async Task Graph_AsMermaidOrDot_IsText_AndAnUnknownFormatIs400()
    {
        await using var api = await ApiFixture.StartAsync();
        var alice = await api.KeyAsync("acme", "alice");
        var job = await api.SubmitAsync(alice, "hello");
        await api.WaitForStatusAsync(alice, job, "completed");

        var mermaid = await api.SendAsync(HttpMethod.Get, $"/v1/jobs/{job}/graph?format=mermaid", alice);
        Assert.Equal(200, mermaid.Status);
        Assert.Equal("text/plain", mermaid.Response.Content.Headers.ContentType!.MediaType);
        var text = await mermaid.Response.Content.ReadAsStringAsync();
        Assert.StartsWith("flowchart TD", text, StringComparison.Ordinal);
        Assert.Contains("status: succeeded", text, StringComparison.Ordinal);

        var dot = await api.SendAsync(HttpMethod.Get, $"/v1/jobs/{job}/graph?format=dot", alice);
        Assert.StartsWith("digraph \"hello@1\"", await dot.Response.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        var png = await api.SendAsync(HttpMethod.Get, $"/v1/jobs/{job}/graph?format=png", alice);
        Assert.Equal(400, png.Status);
        Assert.Equal("application/problem+json", png.Response.Content.Headers.ContentType!.MediaType);
        Assert.True(png.Json.GetProperty("errors").TryGetProperty("format", out _));
    }

    [Fact]
    public async Task Graph_OfAnotherTenantsJob_Is404_LikeEveryOtherPath_AndNeedsAKey()
    {
        await using var api = await ApiFixture.StartAsync();
        var alice = await api.KeyAsync("acme", "alice");
        var job = await api.SubmitAsync(alice, "hello");
        await api.WaitForStatusAsync(alice, job, "completed");

        var gary = await api.KeyAsync("globex", "gary");
        var other = await api.SendAsync(HttpMethod.Get, $"/v1/jobs/{job}/graph", gary);
        Assert.Equal(404, other.Status);
        Assert.Equal("application/problem+json", other.Response.Content.Headers.ContentType!.MediaType);
        Assert.Equal(404, (await api.SendAsync(HttpMethod.Get, $"/v1/jobs/{job}/graph?format=mermaid", gary)).Status);
        Assert.Equal(404, (await api.SendAsync(HttpMethod.Get, "/v1/jobs/not-a-job/graph", alice)).Status);
        Assert.Equal(401, (await api.SendAsync(HttpMethod.Get, $"/v1/jobs/{job}/graph", null)).Status);
    }
}
