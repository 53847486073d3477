using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;
using Ordo.McpTestServer;

// stdio (default): the protocol on stdin/stdout, nothing else written to stdout.
// --http: streamable HTTP on 127.0.0.1 at a free port; the first line on stdout is "listening on URL".
if (args.Contains("--http"))
{
    var builder = WebApplication.CreateSlimBuilder();
    builder.Logging.ClearProviders();
    builder.WebHost.UseUrls("http://127.0.0.1:0");
    builder.Services.AddMcpServer(o => o.ServerInfo = new Implementation { Name = "ordo-test", Version = "1.0.0" })
        .WithHttpTransport()
        .WithListToolsHandler((_, _) => ValueTask.FromResult(TestTools.List()))
        .WithCallToolHandler((request, ct) => TestTools.CallAsync(request.Params, ct));
    var app = builder.Build();
    app.MapMcp("/mcp");
    await app.StartAsync();
    Console.WriteLine($"listening on {app.Urls.First()}/mcp");
    await app.WaitForShutdownAsync();
    return;
}

var options = new McpServerOptions
{
    ServerInfo = new Implementation { Name = "ordo-test", Version = "1.0.0" },
    Handlers = new McpServerHandlers
    {
        ListToolsHandler = (_, _) => ValueTask.FromResult(TestTools.List()),
        CallToolHandler = (request, ct) => TestTools.CallAsync(request.Params, ct),
    },
};
await using var server = McpServer.Create(new StdioServerTransport(options), options);
await server.RunAsync();
