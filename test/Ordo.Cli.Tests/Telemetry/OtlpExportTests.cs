using System.Net;
using System.Net.Sockets;
using System.Text;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Telemetry;

public sealed class OtlpExportTests
{
    [Fact]
    public async Task Run_WithOtlpEndpoint_SendsTheJobsSpansBeforeExiting()
    {
        // A loopback OTLP/HTTP receiver: it keeps the bodies posted to /v1/traces (protobuf) and answers 200.
        var port = FreePort();
        using var receiver = new HttpListener();
        receiver.Prefixes.Add($"http://127.0.0.1:{port}/");
        receiver.Start();
        var bodies = new List<byte[]>();
        var serving = Task.Run(async () =>
        {
            while (receiver.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await receiver.GetContextAsync();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
                {
                    return;
                }

                using var buffer = new MemoryStream();
                await context.Request.InputStream.CopyToAsync(buffer);
                if (context.Request.HttpMethod == "POST" && context.Request.Url!.AbsolutePath == "/v1/traces")
                {
                    lock (bodies) bodies.Add(buffer.ToArray());
                }

                context.Response.StatusCode = 200;
                context.Response.Close();
            }
        });

        using var w = Workspace.WithSample();
        var environment = new Dictionary<string, string>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = $"http://127.0.0.1:{port}",
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            ["OTEL_SERVICE_NAME"] = "ordo-cli-test",
        };
        using var process = OrdoProcess.Start(environment, w.Root, SampleJob.Args(w, "run", "--json"));
        var code = await process.WaitForExitAsync(TimeSpan.FromSeconds(120));
        Assert.True(code == 0, $"exit code {code}\n{process.Err}");
        receiver.Stop();
        await serving;

        // Exported at exit (the batch is flushed when the command returns): the spans' names are in the protobuf as text.
        string all;
        lock (bodies) all = string.Join('\n', bodies.Select(b => Encoding.UTF8.GetString(b)));
        Assert.NotEmpty(bodies);
        Assert.Contains("job invoice-reconciliation", all, StringComparison.Ordinal);
        Assert.Contains("step ", all, StringComparison.Ordinal);
        Assert.Contains("ordo.job.id", all, StringComparison.Ordinal);
        Assert.Contains("ordo-cli-test", all, StringComparison.Ordinal);
    }

    private static int FreePort()
    {
        using var socket = new TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        return ((IPEndPoint)socket.LocalEndpoint).Port;
    }
}
