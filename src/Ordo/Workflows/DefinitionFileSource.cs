namespace Ordo.Workflows;

/// <summary>Where definition files are read from: the file system when a workflow is loaded, a stored bundle when a job resumes.</summary>
public abstract class DefinitionFileSource
{
    /// <summary>Reads a file by absolute path, or returns null when it does not exist.</summary>
    public abstract string? Read(string absolutePath);

    /// <summary>Whether a directory exists (prompt and workflow folders).</summary>
    public abstract bool DirectoryExists(string absolutePath);

    /// <summary>Lists the files of a directory (absolute paths).</summary>
    public abstract IEnumerable<string> ListFiles(string absolutePath, string pattern);

    /// <summary>How a path is shown in messages.</summary>
    public abstract string Display(string absolutePath);
}

/// <summary>Reads from the file system and remembers every file read, to build the stored bundle.</summary>
public sealed class PhysicalDefinitionFileSource : DefinitionFileSource
{
    private readonly string _displayBase;

    /// <summary>Creates a source; paths in messages are shown relative to <paramref name="displayBase"/> (default: the working directory).</summary>
    public PhysicalDefinitionFileSource(string? displayBase = null) => _displayBase = Path.GetFullPath(displayBase ?? Directory.GetCurrentDirectory());

    /// <summary>The largest definition file read (a workflow, a schema, a prompt…), in bytes.</summary>
    public const int MaxFileBytes = 8 * 1024 * 1024;

    /// <summary>Every file read so far, by absolute path.</summary>
    public Dictionary<string, string> FilesRead { get; } = new(StringComparer.Ordinal);

    /// <summary>Every directory found to exist so far, by absolute path.</summary>
    public HashSet<string> DirectoriesFound { get; } = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public override string? Read(string absolutePath)
    {
        if (FilesRead.TryGetValue(absolutePath, out var cached))
        {
            return cached;
        }

        if (!File.Exists(absolutePath))
        {
            return null;
        }

        if (new FileInfo(absolutePath).Length > MaxFileBytes)
        {
            throw new OrdoValidationException([new ValidationProblem(Display(absolutePath), 0, 0, "", $"the file is larger than {MaxFileBytes / (1024 * 1024)} MB; a definition file is expected to be far smaller")]);
        }

        string text;
        try
        {
            text = JsonElementFactory.DecodeUtf8(File.ReadAllBytes(absolutePath));
        }
        catch (FormatException e)
        {
            throw new OrdoValidationException([new ValidationProblem(Display(absolutePath), 0, 0, "", e.Message + "; save the file as UTF-8")]);
        }
        FilesRead[absolutePath] = text;
        return text;
    }

    /// <inheritdoc />
    public override bool DirectoryExists(string absolutePath)
    {
        if (!Directory.Exists(absolutePath)) return false;
        DirectoriesFound.Add(Path.TrimEndingDirectorySeparator(absolutePath));
        return true;
    }

    /// <inheritdoc />
    public override IEnumerable<string> ListFiles(string absolutePath, string pattern)
        => DirectoryExists(absolutePath) ? Directory.EnumerateFiles(absolutePath, pattern).Order(StringComparer.Ordinal) : [];

    /// <inheritdoc />
    public override string Display(string absolutePath)
    {
        var rel = Path.GetRelativePath(_displayBase, absolutePath);
        return rel.StartsWith("..", StringComparison.Ordinal) && rel.Count(c => c == Path.DirectorySeparatorChar) > 2 ? absolutePath : rel;
    }
}

/// <summary>Reads from a stored <see cref="DefinitionBundle"/>.</summary>
public sealed class BundleDefinitionFileSource : DefinitionFileSource
{
    private readonly DefinitionBundle _bundle;

    /// <summary>Creates a source over a bundle.</summary>
    public BundleDefinitionFileSource(DefinitionBundle bundle) => _bundle = bundle ?? throw new ArgumentNullException(nameof(bundle));

    /// <inheritdoc />
    public override string? Read(string absolutePath) => _bundle.Files.GetValueOrDefault(Key(absolutePath));

    /// <inheritdoc />
    public override bool DirectoryExists(string absolutePath)
    {
        var key = Key(absolutePath).TrimEnd('/');
        if (_bundle.Directories?.Contains(key, StringComparer.Ordinal) == true) return true;
        var prefix = key + "/";
        return _bundle.Files.Keys.Any(k => k.StartsWith(prefix, StringComparison.Ordinal));
    }

    /// <inheritdoc />
    public override IEnumerable<string> ListFiles(string absolutePath, string pattern)
    {
        var prefix = Key(absolutePath).TrimEnd('/') + "/";
        var suffix = pattern.StartsWith('*') ? pattern[1..] : pattern;
        return _bundle.Files.Keys
            .Where(k => k.StartsWith(prefix, StringComparison.Ordinal) && !k[prefix.Length..].Contains('/', StringComparison.Ordinal) && k.EndsWith(suffix, StringComparison.Ordinal))
            .Select(k => Path.GetFullPath(Path.Combine(_bundle.Root, k)));
    }

    /// <inheritdoc />
    public override string Display(string absolutePath) => Key(absolutePath);

    private string Key(string absolutePath) => Path.GetRelativePath(_bundle.Root, absolutePath).Replace(Path.DirectorySeparatorChar, '/');
}
