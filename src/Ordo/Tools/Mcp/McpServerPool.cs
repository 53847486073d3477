using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using Ordo.Configuration;

namespace Ordo.Tools.Mcp;

/// <summary>
/// Owns the sessions with MCP servers: one per server (per <c>mcp_servers</c> entry and project directory), started on
/// first use and kept for the calls that follow. A stdio server is a child process started with <c>command</c> in the
/// project directory, given only the environment every program needs (<c>PATH</c>, <c>HOME</c>, …) and the server's
/// <c>env:</c>; an http server is reached at <c>url</c> over the streamable HTTP transport.
/// </summary>
/// <remarks>
/// <para>
/// A session whose process exited or whose connection broke is replaced by a new one on the next call; a call that was
/// in flight on it fails as retryable. Concurrent first calls start one session, not one each. What a stdio server
/// writes on stderr is kept (its last <see cref="McpServerPoolOptions.StderrLines"/> lines) to quote in errors, and
/// never printed.
/// </para>
/// <para>
/// <see cref="DisposeAsync"/> ends every session: a stdio server's input is closed, and its process tree is killed if it
/// has not exited within <see cref="McpServerPoolOptions.ShutdownTimeout"/>. Thread-safe.
/// </para>
/// </remarks>
public sealed class McpServerPool : IMcpToolCatalog, IAsyncDisposable
{
    private readonly McpServerPoolOptions _options;
    private readonly ILoggerFactory? _loggerFactory;
    private readonly ConcurrentDictionary<string, Slot> _slots = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Task, byte> _closing = new();
    private readonly CancellationTokenSource _stopping = new();
    private long _started;
    private int _disposed;

    /// <summary>Creates a pool; nothing is started until a server is first used.</summary>
    /// <param name="options">Limits; null uses the defaults.</param>
    /// <param name="loggerFactory">Where the MCP client logs (its transport's diagnostics); null logs nothing.</param>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public McpServerPool(McpServerPoolOptions? options = null, ILoggerFactory? loggerFactory = null)
    {
        _options = options ?? new McpServerPoolOptions();
        _options.Validate();
        _loggerFactory = loggerFactory;
    }

    /// <summary>How many sessions this pool has started (or tried to start) since it was created; a restart counts again.</summary>
    public long SessionsStarted => Interlocked.Read(ref _started);

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<McpToolInfo>> ListToolsAsync(ProjectDefinition project, string serverName, CancellationToken cancellationToken = default)
    {
        var session = await GetSessionAsync(project, serverName, cancellationToken).ConfigureAwait(false);
        return await ListToolsAsync(session, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Ends every session and stops every server process; later calls fail with <see cref="ObjectDisposedException"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        // A session being started stops starting (and its process is stopped) before the slots are emptied.
        await _stopping.CancelAsync().ConfigureAwait(false);
        var closing = new List<Task>(_closing.Keys);
        foreach (var slot in _slots.Values)
        {
            await slot.Gate.WaitAsync().ConfigureAwait(false);
            try
            {
                if (slot.Session is { } session)
                {
                    slot.Session = null;
                    closing.Add(session.DisposeAsync().AsTask());
                }
            }
            finally
            {
                slot.Gate.Release();
            }
        }

        try
        {
            await Task.WhenAll(closing).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The servers are stopped either way (a process that does not exit is killed); a failure to say goodbye is not the caller's.
        }

        foreach (var slot in _slots.Values) slot.Gate.Dispose();
        _stopping.Dispose();
    }

    /// <summary>The server's tools through a session already in hand, mapping failures like calls.</summary>
    internal static async ValueTask<IReadOnlyList<McpToolInfo>> ListToolsAsync(McpServerSession session, CancellationToken cancellationToken)
    {
        try
        {
            return await session.ToolsAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw await McpErrors.FromCallAsync(session, "listing its tools", e).ConfigureAwait(false);
        }
    }

    /// <summary>The live session with a server of the project, started if there is none (or the last one ended).</summary>
    /// <exception cref="ToolExecutionException">The server is not defined, or could not be started.</exception>
    internal async ValueTask<McpServerSession> GetSessionAsync(ProjectDefinition project, string serverName, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(project);
        ArgumentNullException.ThrowIfNull(serverName);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (!project.McpServers.TryGetValue(serverName, out var server))
        {
            var known = project.McpServers.Count == 0 ? "none is defined" : "defined: " + string.Join(", ", project.McpServers.Keys.Order(StringComparer.Ordinal));
            throw new ToolExecutionException("config_error", $"MCP server '{serverName}' is not defined under 'mcp_servers' ({known})", retryable: false);
        }

        var workingDirectory = server.WorkingDirectory ?? project.BaseDirectory;
        var slot = _slots.GetOrAdd(Key(server, workingDirectory), _ => new Slot());
        if (slot.Session is { IsAlive: true } live) return live;

        await slot.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (slot.Session is { IsAlive: true } started) return started;
            if (slot.Session is { } ended)
            {
                // Its process has exited (or its connection broke): what is left of it is cleaned up aside, not in this call's time.
                slot.Session = null;
                Track(ended.DisposeAsync().AsTask());
            }

            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            var session = await StartAsync(server, workingDirectory, cancellationToken).ConfigureAwait(false);
            slot.Session = session;
            return session;
        }
        finally
        {
            slot.Gate.Release();
        }
    }

    private async Task<McpServerSession> StartAsync(McpServerDefinition server, string workingDirectory, CancellationToken cancellationToken)
    {
        using var starting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        starting.CancelAfter(_options.StartTimeout);
        StderrTail? stderr = null;
        IClientTransport transport;
        string description;
        if (server.Command is { Count: > 0 } command)
        {
            description = $"MCP server '{server.Name}' ({string.Join(' ', command)})";
            stderr = new StderrTail(_options.StderrLines);
            // The server does not see Ordo's environment (its secrets among it): only what programs need, and its own env.
            var environment = StdioClientTransportOptions.GetDefaultEnvironmentVariables();
            foreach (var (name, value) in server.Env) environment[name] = value;
            transport = new StdioClientTransport(new StdioClientTransportOptions
            {
                Name = server.Name,
                Command = Program(command[0], workingDirectory),
                Arguments = command.Skip(1).ToList(),
                WorkingDirectory = workingDirectory,
                InheritEnvironmentVariables = false,
                EnvironmentVariables = environment,
                ShutdownTimeout = _options.ShutdownTimeout,
                StandardErrorLines = stderr.Add,
            }, _loggerFactory);
        }
        else if (server.Url is { } url && Uri.TryCreate(url, UriKind.Absolute, out var endpoint))
        {
            description = $"MCP server '{server.Name}' ({endpoint.GetLeftPart(UriPartial.Path)})";
            transport = new HttpClientTransport(new HttpClientTransportOptions
            {
                Name = server.Name,
                Endpoint = endpoint,
                TransportMode = HttpTransportMode.StreamableHttp,
                ConnectionTimeout = _options.StartTimeout,
            }, _loggerFactory);
        }
        else
        {
            throw new ToolExecutionException("config_error", $"MCP server '{server.Name}' has neither a command nor an absolute URL", retryable: false);
        }

        Interlocked.Increment(ref _started);
        try
        {
            // Started on the thread pool and awaited with the start's token: a send that blocks (a server that exited
            // before it read its input) cannot hold this call past the start timeout.
            var creating = Task.Run(() => McpClient.CreateAsync(transport, new McpClientOptions
            {
                ClientInfo = new Implementation { Name = "ordo", Version = typeof(McpServerPool).Assembly.GetName().Version?.ToString(3) ?? "0" },
                InitializationTimeout = _options.StartTimeout,
            }, _loggerFactory, starting.Token), CancellationToken.None);
            McpClient client;
            try
            {
                client = await creating.WaitAsync(starting.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!creating.IsCompleted)
            {
                // Given up on: a client it still makes is closed when it comes, aside.
                Track(CloseLateAsync(creating));
                throw;
            }

            return new McpServerSession(server.Name, description, client, stderr);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await DisposeTransportAsync(transport).ConfigureAwait(false);
            throw;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            await DisposeTransportAsync(transport).ConfigureAwait(false);
            var why = _stopping.IsCancellationRequested ? "the runtime is stopping"
                : starting.IsCancellationRequested || e is TimeoutException ? $"it did not start within {Durations.Format(_options.StartTimeout)}"
                : McpErrors.Describe(e);
            throw new ToolExecutionException("mcp_unavailable", $"{description} could not be started: {why}{McpServerSession.StderrSuffix(stderr)}", retryable: true, e);
        }
    }

    /// <summary>Closes the client of a start given up on, if it still comes.</summary>
    private static async Task CloseLateAsync(Task<McpClient> creating)
    {
        try
        {
            await (await creating.ConfigureAwait(false)).DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // It failed to start after all: nothing to close.
        }
    }

    /// <summary>
    /// Disposes a transport whose session never started. The client already disposed what it connected; this covers a
    /// transport that owns more (an HTTP transport's own client).
    /// </summary>
    private static async ValueTask DisposeTransportAsync(IClientTransport transport)
    {
        if (transport is IAsyncDisposable disposable)
        {
            try
            {
                await disposable.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Already closed.
            }
        }
    }

    /// <summary>A program named by a relative path (<c>./servers/docs.sh</c>) is the project's own; a bare name is looked up on PATH.</summary>
    private static string Program(string program, string workingDirectory)
        => !Path.IsPathRooted(program) && (program.Contains('/', StringComparison.Ordinal) || program.Contains('\\', StringComparison.Ordinal))
            ? Path.GetFullPath(Path.Combine(workingDirectory, program))
            : program;

    /// <summary>Keeps a session being closed aside, so that disposing the pool waits for it.</summary>
    private void Track(Task closing)
    {
        _closing.TryAdd(closing, 0);
        _ = closing.ContinueWith(t => _closing.TryRemove(t, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>One session per server definition and directory: two projects with a server of the same name get two.</summary>
    private static string Key(McpServerDefinition server, string workingDirectory)
        => string.Join('\0', [server.Name, workingDirectory, server.Url ?? "", .. server.Command ?? [], .. server.Env.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => e.Key + "=" + e.Value)]);

    private sealed class Slot
    {
        public SemaphoreSlim Gate { get; } = new(1, 1);

        public McpServerSession? Session
        {
            get => Volatile.Read(ref field);
            set => Volatile.Write(ref field, value);
        }
    }
}
