using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Ordo.TestServers;

/// <summary>
/// An HTTP/1.1 server on 127.0.0.1 that writes its answers on the socket itself, so that a test knows exactly what the
/// operating system accepted before the client hung up (Kestrel accepts writes after a hang-up and drops them).
/// Each connection gets one answer, then is closed.
/// </summary>
public sealed class RawLoopbackServer : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly List<Task> _connections = [];
    private readonly Lock _gate = new();

    private RawLoopbackServer(TcpListener listener, Func<string, Stream, CancellationToken, Task> answer)
    {
        _listener = listener;
        Address = new Uri($"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}/");
        _accepting = AcceptAsync(answer);
    }

    /// <summary>The server's base address, like <c>http://127.0.0.1:41234/</c>.</summary>
    public Uri Address { get; }

    /// <summary>
    /// Starts a server; <paramref name="answer"/> gets the request head (request line and headers) and the connection's
    /// stream to write the answer on.
    /// </summary>
    public static Task<RawLoopbackServer> StartAsync(Func<string, Stream, CancellationToken, Task> answer)
    {
        ArgumentNullException.ThrowIfNull(answer);
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return Task.FromResult(new RawLoopbackServer(listener, answer));
    }

    /// <summary>
    /// Writes a 200 answer with a chunked JSON body of <paramref name="size"/> bytes (a list, then blanks) in 64 KiB
    /// chunks, until all is written or the client hangs up; returns the body bytes the connection accepted.
    /// </summary>
    public static async Task<long> StreamJsonAsync(Stream stream, long size, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        long written = 0;
        try
        {
            await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"u8.ToArray(), cancellationToken);
            var chunk = new byte[64 * 1024];
            Array.Fill(chunk, (byte)' ');
            chunk[0] = (byte)'[';
            var head = Encoding.ASCII.GetBytes($"{chunk.Length:x}\r\n");
            while (written < size)
            {
                await stream.WriteAsync(head, cancellationToken);
                await stream.WriteAsync(chunk, cancellationToken);
                await stream.WriteAsync("\r\n"u8.ToArray(), cancellationToken);
                written += chunk.Length;
                chunk[0] = (byte)' ';
            }
        }
        catch (IOException)
        {
            // The client hung up.
        }

        return written;
    }

    private async Task AcceptAsync(Func<string, Stream, CancellationToken, Task> answer)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            lock (_gate) _connections.Add(ServeAsync(socket, answer));
        }
    }

    private async Task ServeAsync(Socket socket, Func<string, Stream, CancellationToken, Task> answer)
    {
        await using var stream = new NetworkStream(socket, ownsSocket: true);
        try
        {
            var head = new StringBuilder();
            var one = new byte[1];
            while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal) && head.Length < 64 * 1024)
            {
                if (await stream.ReadAsync(one, _stop.Token) == 0) return;
                head.Append((char)one[0]);
            }

            await answer(head.ToString(), stream, _stop.Token);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            // The client or the test went away.
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        Task[] open;
        lock (_gate) open = [.. _connections];
        await Task.WhenAll(open);
        _stop.Dispose();
    }
}
