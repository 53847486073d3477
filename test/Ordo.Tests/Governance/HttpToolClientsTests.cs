using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Ordo.Engine;
using Ordo.TestServers;
using Ordo.Tools;

namespace Ordo.Tests.Governance;

/// <summary>The clients of http tools: the container's <c>ordo-tools</c> client and the factory used without a container keep the same rules.</summary>
public sealed class HttpToolClientsTests
{
    private static async Task AssertProtectedAsync(IHttpClientFactory factory)
    {
        await using var server = await LoopbackServer.StartAsync((ctx, req) =>
        {
            ctx.Response.Headers.SetCookie = "session=abc; Path=/";
            ctx.Response.StatusCode = req.Path == "/moved" ? 302 : 200;
            if (req.Path == "/moved") ctx.Response.Headers.Location = "/elsewhere";
            return Task.CompletedTask;
        });
        var client = factory.CreateClient("ordo-tools");

        using var moved = await client.GetAsync(new Uri(server.Address, "moved"));
        using var next = await client.GetAsync(new Uri(server.Address, "next"));
        var refused = await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync(new Uri("http://169.254.169.254/latest/meta-data/")));

        Assert.Equal(HttpStatusCode.Found, moved.StatusCode);                   // not followed: each tool follows redirects itself
        Assert.Equal(["/moved", "/next"], server.Requests.Select(r => r.Path));
        Assert.False(server.Requests[1].Headers.ContainsKey("Cookie"));          // no cookie kept between requests
        Assert.IsType<AddressRefusedException>(refused.InnerException);          // refused when connecting
        Assert.Equal(Timeout.InfiniteTimeSpan, client.Timeout);                 // each tool has its own timeout
        Assert.Equal(HttpToolConnections.MaxBufferedResponseBytes, client.MaxResponseContentBufferSize);
    }

    [Fact]
    public async Task AddOrdoHttpClients_TheToolsClient_FollowsNoRedirect_KeepsNoCookie_AndRefusesAMetadataAddress()
    {
        await using var services = new ServiceCollection().AddOrdoHttpClients().BuildServiceProvider();

        await AssertProtectedAsync(services.GetRequiredService<IHttpClientFactory>());
    }

    [Fact]
    public async Task WithoutAContainer_TheDefaultFactory_KeepsTheSameRules()
    {
        using var factory = new HttpToolClientFactory();

        await AssertProtectedAsync(factory);
    }

    [Fact]
    public async Task TheToolsClient_ChecksEveryAddressANameResolvesTo_UnderTheRulesOfTheRequest()
    {
        using var factory = new HttpToolClientFactory((host, _) => Task.FromResult<IPAddress[]>([IPAddress.Parse("169.254.169.254")]));
        var client = factory.CreateClient("ordo-tools");

        var e = await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync(new Uri("http://rebound.test/")));

        var refused = Assert.IsType<AddressRefusedException>(e.InnerException);
        Assert.Equal("rebound.test", refused.Host);
    }

    [Fact]
    public async Task AddOrdo_HandsTheContainersFactoryToTheRuntime()
    {
        var services = new ServiceCollection();
        services.AddOrdo();
        await using var provider = services.BuildServiceProvider();

        Assert.NotNull(provider.GetRequiredService<OrdoComponents>().HttpClients);
    }
}
