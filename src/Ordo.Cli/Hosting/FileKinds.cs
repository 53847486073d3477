using System.Runtime.InteropServices;

namespace Ordo.Cli.Hosting;

/// <summary>What a path names, after its symbolic links: only a regular file is ever opened to be read as a document.</summary>
internal enum FileKind
{
    /// <summary>Nothing (or a link to nothing).</summary>
    Missing,

    /// <summary>A regular file.</summary>
    Regular,

    /// <summary>A folder.</summary>
    Directory,

    /// <summary>A named pipe: opening it waits for a writer, reading it waits for data.</summary>
    Fifo,

    /// <summary>A character device (<c>/dev/zero</c>, a terminal): reading it may never end.</summary>
    CharacterDevice,

    /// <summary>A block device.</summary>
    BlockDevice,

    /// <summary>A socket.</summary>
    Socket,

    /// <summary>Not known to be a regular file: where the kind cannot be read, an empty file or something that is not a file.</summary>
    Unknown,
}

/// <summary>Tells the kind of a path without opening it (opening a FIFO blocks until a writer comes, and ignores cancellation).</summary>
internal static partial class FileKinds
{
    private const int AtFdCwd = -100;
    private const uint StatxType = 0x1;
    private static readonly bool HasStatx = OperatingSystem.IsLinux() && Probe();

    /// <summary>The kind of what <paramref name="path"/> names, following symbolic links.</summary>
    public static FileKind Of(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (HasStatx)
        {
            if (Statx(AtFdCwd, path, 0, StatxType, out var status) != 0)
            {
                // A link to nothing is missing; something there that cannot be looked at (no permission) is unknown.
                return new FileInfo(path) is { LinkTarget: null, Exists: true } ? FileKind.Unknown : FileKind.Missing;
            }

            return (status.Mode & 0xF000) switch
            {
                0x8000 => FileKind.Regular,
                0x4000 => FileKind.Directory,
                0x1000 => FileKind.Fifo,
                0x2000 => FileKind.CharacterDevice,
                0x6000 => FileKind.BlockDevice,
                0xC000 => FileKind.Socket,
                _ => FileKind.Unknown,
            };
        }

        // Elsewhere, without the file's type: a pipe, a device or a socket reports no length, a regular file with content one.
        if (Directory.Exists(path)) return FileKind.Directory;
        if (!File.Exists(path)) return FileKind.Missing;
        return OperatingSystem.IsWindows() || new FileInfo(path).Length > 0 ? FileKind.Regular : FileKind.Unknown;
    }

    /// <summary>
    /// The path with every symbolic link in it resolved (its folders' and its own), absolute; a part that does not exist
    /// is kept as written. Two paths that name the same file through links have the same real path.
    /// </summary>
    /// <exception cref="IOException">A link loops.</exception>
    public static string RealPath(string path) => RealPath(Path.GetFullPath(path), 0);

    private static string RealPath(string full, int depth)
    {
        if (depth > 40) throw new IOException($"{full}: too many levels of symbolic links");
        var root = Path.GetPathRoot(full) ?? "";
        var current = root;
        foreach (var part in full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
        {
            var next = Path.Combine(current, part);
            FileSystemInfo entry = new FileInfo(next);
            if (entry.LinkTarget is not null && entry.ResolveLinkTarget(returnFinalTarget: true) is { } target)
            {
                next = RealPath(Path.GetFullPath(target.FullName), depth + 1);
            }

            current = next;
        }

        return current;
    }

    /// <summary>Whether two real paths name the same file (ignoring case where the file system usually does).</summary>
    public static bool Same(string a, string b)
        => string.Equals(a, b, OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal);

    /// <summary>Whether the real path <paramref name="path"/> is inside the real folder <paramref name="folder"/>.</summary>
    public static bool IsWithin(string path, string folder)
    {
        var prefix = folder.EndsWith(Path.DirectorySeparatorChar) ? folder : folder + Path.DirectorySeparatorChar;
        return path.StartsWith(prefix, OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal);
    }

    /// <summary>
    /// Reads a file of at most <paramref name="limit"/> bytes, counting the bytes read (not the length the file system
    /// reports, which a device or a growing file does not keep to); null when it holds more.
    /// </summary>
    public static async Task<byte[]?> ReadAtMostAsync(string path, long limit, CancellationToken cancellationToken)
    {
        await using var stream = new FileStream(path, new FileStreamOptions { Mode = FileMode.Open, Access = FileAccess.Read, Share = FileShare.Read, BufferSize = 0, Options = FileOptions.SequentialScan });
        using var content = new MemoryStream();
        var chunk = new byte[64 * 1024];
        int n;
        while ((n = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (content.Length + n > limit) return null;
            content.Write(chunk, 0, n);
        }

        return content.ToArray();
    }

    /// <summary>How a kind is named in messages.</summary>
    public static string Describe(FileKind kind) => kind switch
    {
        FileKind.Missing => "it does not exist (or is a link to nothing)",
        FileKind.Regular => "a regular file",
        FileKind.Directory => "it is a folder",
        FileKind.Fifo => "it is a named pipe (FIFO)",
        FileKind.CharacterDevice => "it is a character device",
        FileKind.BlockDevice => "it is a block device",
        FileKind.Socket => "it is a socket",
        _ => "it is empty or not a regular file",
    };

    private static bool Probe()
    {
        try
        {
            _ = Statx(AtFdCwd, "/", 0, StatxType, out _);
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    /// <summary>The start of <c>struct statx</c> (linux/stat.h; the same layout on every architecture), padded to its 256 bytes.</summary>
    [StructLayout(LayoutKind.Sequential, Size = 256)]
    private struct StatxBuffer
    {
        public uint Mask;
        public uint BlockSize;
        public ulong Attributes;
        public uint Links;
        public uint Uid;
        public uint Gid;
        public ushort Mode;
    }

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int directory, string path, int flags, uint mask, out StatxBuffer buffer);
}
