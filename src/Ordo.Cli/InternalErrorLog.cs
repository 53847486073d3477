namespace Ordo.Cli;

/// <summary>
/// Writes the details of an internal error to a log file, so that stderr stays readable: <c>ORDO_LOG_DIR</c>, else
/// <c>ordo/logs</c> in the temporary folder. The folder is made readable by its owner only (0700) and each log too (0600),
/// and what the log repeats of the command line and of the error has its secrets masked (<see cref="Redaction"/>).
/// </summary>
internal static class InternalErrorLog
{
    private const UnixFileMode PrivateFolder = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode PrivateFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>The folder logs go to.</summary>
    public static string DefaultFolder => Environment.GetEnvironmentVariable("ORDO_LOG_DIR") is { Length: > 0 } d ? d : Path.Combine(Path.GetTempPath(), "ordo", "logs");

    /// <summary>Writes a log of <paramref name="e"/> and returns its path, or why it could not be written.</summary>
    public static string Write(Exception e, IEnumerable<string> args, string? directory = null)
    {
        ArgumentNullException.ThrowIfNull(e);
        var dir = directory ?? DefaultFolder;
        try
        {
            CreatePrivateDirectory(dir);
            var text = $"ordo {typeof(OrdoCli).Assembly.GetName().Version}\nargs: {Redaction.CommandLine(args)}\n\n{Redaction.Text(e.ToString())}\n";
            var stamp = $"ordo-{TimeProvider.System.GetUtcNow():yyyyMMdd-HHmmss}-{Environment.ProcessId}";
            for (var n = 0; ; n++)
            {
                var path = Path.Combine(dir, n == 0 ? stamp + ".log" : $"{stamp}-{n}.log");
                try
                {
                    // CreateNew: never into a file (or a link) that is already there.
                    using var file = new FileStream(path, PrivateFileOptions());
                    using var writer = new StreamWriter(file);
                    writer.Write(text);
                    return path;
                }
                catch (IOException) when (n < 10 && File.Exists(path))
                {
                    // Another error of this process in the same second: the next name.
                }
            }
        }
        catch (Exception x) when (x is IOException or UnauthorizedAccessException)
        {
            return "(the log could not be written)";
        }
    }

    private static void CreatePrivateDirectory(string dir)
    {
        if (OperatingSystem.IsWindows())
        {
            System.IO.Directory.CreateDirectory(dir);
            return;
        }

        var existed = System.IO.Directory.Exists(dir);
        System.IO.Directory.CreateDirectory(dir, PrivateFolder);
        // A folder made before (by an older ordo, or by hand) is made private too; one of another user's cannot be, and is not used.
        if (existed && (File.GetUnixFileMode(dir) & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute)) != 0)
        {
            File.SetUnixFileMode(dir, PrivateFolder);
        }
    }

    private static FileStreamOptions PrivateFileOptions()
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = PrivateFile;
        return options;
    }
}
