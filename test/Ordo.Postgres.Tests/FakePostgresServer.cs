using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Ordo.Postgres.Tests;

/// <summary>
/// A loopback listener that speaks just enough of PostgreSQL's protocol to answer a client's startup message with one
/// message of its choosing (by default, a request for a cleartext password), then closes the connection: a server that
/// requires a password, or one that answers with what no client expects, without a real server set up for it.
/// </summary>
public sealed class FakePostgresServer : IAsyncDisposable
{
    private const int SslRequest = 80877103;
    private const int GssEncRequest = 80877104;
    private readonly TcpListener _listener;
    private readonly byte[] _answer;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;

    private FakePostgresServer(byte[] answer)
    {
        _answer = answer;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _accepting = AcceptAsync();
    }

    /// <summary>The port it listens on (127.0.0.1).</summary>
    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>A server that asks for a password in cleartext (AuthenticationCleartextPassword).</summary>
    public static FakePostgresServer RequiringAPassword() => new([(byte)'R', 0, 0, 0, 8, 0, 0, 0, 3]);

    /// <summary>A server that answers the startup with a message of a type the protocol does not have.</summary>
    public static FakePostgresServer SpeakingNonsense() => new([(byte)'~', 0, 0, 0, 4]);

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            _ = AnswerAsync(client);
        }
    }

    private async Task AnswerAsync(TcpClient client)
    {
        using (client)
        {
            try
            {
                var stream = client.GetStream();
                var header = new byte[8];
                while (true)
                {
                    await stream.ReadExactlyAsync(header, _stop.Token);
                    var length = BinaryPrimitives.ReadInt32BigEndian(header);
                    var code = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(4));
                    if (length > 8) await stream.ReadExactlyAsync(new byte[length - 8], _stop.Token);
                    if (code is SslRequest or GssEncRequest)
                    {
                        // No TLS, no GSS encryption: the client goes on in plain text.
                        await stream.WriteAsync("N"u8.ToArray(), _stop.Token);
                        continue;
                    }

                    await stream.WriteAsync(_answer, _stop.Token);
                    await stream.FlushAsync(_stop.Token);
                    // Whatever the client sends next (a password, a termination) ends it.
                    _ = await stream.ReadAsync(new byte[1], _stop.Token);
                    return;
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or EndOfStreamException or SocketException or ObjectDisposedException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        _stop.Dispose();
    }
}
