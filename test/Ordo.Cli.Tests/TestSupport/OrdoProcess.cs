using System.Diagnostics;
using System.Text;

namespace Ordo.Cli.Tests.TestSupport;

/// <summary>The <c>ordo</c> executable running in its own process, with its output collected line by line.</summary>
internal sealed class OrdoProcess : IDisposable
{
    private readonly Process _process;
    private readonly Lock _gate = new();
    private readonly List<string> _out = [];
    private readonly StringBuilder _err = new();
    private readonly List<(Func<IReadOnlyList<string>, bool> Condition, TaskCompletionSource<bool> Done)> _waiters = [];
    private readonly TaskCompletionSource _outClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _errClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _ended;

    private OrdoProcess(Process process, string commandLine)
    {
        _process = process;
        CommandLine = commandLine;
    }

    /// <summary>The command that was started, for messages.</summary>
    public string CommandLine { get; }

    /// <summary>The process id.</summary>
    public int Pid => _process.Id;

    /// <summary>Whether the process has exited.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>Completes when the process exits.</summary>
    public Task ExitedAsync() => _process.WaitForExitAsync();

    /// <summary>Everything printed on stdout so far.</summary>
    public IReadOnlyList<string> OutLines
    {
        get
        {
            lock (_gate) return _out.ToList();
        }
    }

    /// <summary>Everything printed on stderr so far.</summary>
    public string Err
    {
        get
        {
            lock (_gate) return _err.ToString();
        }
    }

    /// <summary>Starts <c>ordo ARGS</c> in <paramref name="workingDirectory"/>.</summary>
    public static OrdoProcess Start(string workingDirectory, params string[] args) => Start(new Dictionary<string, string>(), workingDirectory, args);

    /// <summary>Starts <c>ordo ARGS</c> in <paramref name="workingDirectory"/> with more environment variables.</summary>
    public static OrdoProcess Start(IReadOnlyDictionary<string, string> environment, string workingDirectory, params string[] args)
    {
        var info = new ProcessStartInfo(TestPaths.DotnetHost)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        info.ArgumentList.Add(TestPaths.CliDll);
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment.Remove("ORDO_DB");
        info.Environment.Remove("ORDO_POSTGRES");
        info.Environment["ORDO_LOG_DIR"] = Path.Combine(workingDirectory, "logs");
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (name, value) in environment) info.Environment[name] = value;

        var process = new Process { StartInfo = info };
        var p = new OrdoProcess(process, "ordo " + string.Join(' ', args));
        process.OutputDataReceived += (_, e) => p.OnOut(e.Data);
        process.ErrorDataReceived += (_, e) => p.OnErr(e.Data);
        process.Start();
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return p;
    }

    /// <summary>Runs <c>ordo ARGS</c> to its end and returns what it printed.</summary>
    public static Task<CliResult> RunAsync(string workingDirectory, TimeSpan timeout, params string[] args) => RunAsync(workingDirectory, timeout, environment: null, args);

    /// <summary>Runs <c>ordo ARGS</c> with extra environment variables to its end and returns what it printed.</summary>
    public static async Task<CliResult> RunAsync(string workingDirectory, TimeSpan timeout, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        using var p = Start(environment ?? new Dictionary<string, string>(), workingDirectory, args);
        var code = await p.WaitForExitAsync(timeout);
        return new CliResult(code, string.Join('\n', p.OutLines), p.Err);
    }

    /// <summary>Completes with true once the stdout lines satisfy <paramref name="condition"/>, or false when the process ends first or the time is up.</summary>
    public Task<bool> WaitForOutputAsync(Func<IReadOnlyList<string>, bool> condition, TimeSpan timeout)
    {
        var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            if (condition(_out))
            {
                return Task.FromResult(true);
            }

            if (_ended)
            {
                return Task.FromResult(false);
            }

            _waiters.Add((condition, done));
        }

        var timer = new CancellationTokenSource(timeout);
        timer.Token.Register(() => done.TrySetResult(false));
        _ = done.Task.ContinueWith(_ => timer.Dispose(), TaskScheduler.Default);
        return done.Task;
    }

    /// <summary>Waits for the process to exit (killing it when the time is up, which fails the test) and for its output to be read; returns the exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
            Assert.Fail($"{CommandLine} did not exit within {timeout}\n--- stdout\n{string.Join('\n', OutLines)}\n--- stderr\n{Err}");
        }

        await Task.WhenAll(_outClosed.Task, _errClosed.Task).WaitAsync(TimeSpan.FromSeconds(10));
        return _process.ExitCode;
    }

    /// <summary>Kills the process at once (SIGKILL on Linux), as a crash or a power cut would, and waits until it is gone.</summary>
    public void Kill()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // It had already exited.
        }

        _process.WaitForExit();
    }

    /// <summary>Sends a POSIX signal (INT, TERM) with the kill command.</summary>
    public async Task SignalAsync(string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-" + signal, Pid.ToString(System.Globalization.CultureInfo.InvariantCulture) }, UseShellExecute = false })!;
        await kill.WaitForExitAsync();
        Assert.True(kill.ExitCode == 0, $"kill -{signal} {Pid} failed{(_process.HasExited ? $": {CommandLine} had already exited with code {_process.ExitCode}" : "")}\n--- stdout\n{string.Join('\n', OutLines)}\n--- stderr\n{Err}");
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            Kill();
        }

        _process.Dispose();
    }

    private void OnOut(string? line)
    {
        List<TaskCompletionSource<bool>> satisfied = [];
        lock (_gate)
        {
            if (line is null)
            {
                _ended = true;
                satisfied.AddRange(_waiters.Select(w => w.Done));
                _waiters.Clear();
                foreach (var w in satisfied) w.TrySetResult(false);
                _outClosed.TrySetResult();
                return;
            }

            _out.Add(line);
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Condition(_out))
                {
                    satisfied.Add(_waiters[i].Done);
                    _waiters.RemoveAt(i);
                }
            }
        }

        foreach (var w in satisfied) w.TrySetResult(true);
    }

    private void OnErr(string? line)
    {
        lock (_gate)
        {
            if (line is null)
            {
                _errClosed.TrySetResult();
                return;
            }

            _err.AppendLine(line);
        }
    }
}
