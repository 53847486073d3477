using System.Security.Cryptography;

namespace Ordo.Audit;

/// <summary>
/// The audit key: an ECDSA P-256 key in a PEM file outside the database, which signs checkpoints. A file with only
/// the public key verifies checkpoints but cannot sign them. The private key file is created on first use, readable
/// by its owner only (0600), and refused for signing when others can read it.
/// </summary>
/// <remarks>Thread-safe for signing and verifying.</remarks>
public sealed class AuditKey : IDisposable
{
    /// <summary>The environment variable that names the key file; it wins over <c>audit: { key: FILE }</c> in ordo.yaml.</summary>
    public const string EnvironmentVariable = "ORDO_AUDIT_KEY";

    private readonly ECDsa _key;

    private AuditKey(string path, ECDsa key, bool canSign)
    {
        Path = path;
        _key = key;
        CanSign = canSign;
        PublicKey = key.ExportSubjectPublicKeyInfo();
        KeyId = AuditCheckpoint.KeyIdOf(PublicKey);
    }

    /// <summary>
    /// Where the key is kept when neither <see cref="EnvironmentVariable"/> nor ordo.yaml names it: <c>ordo/audit-key.pem</c>
    /// in the user's configuration folder (<c>$XDG_CONFIG_HOME</c> or <c>~/.config</c> on Linux, <c>%APPDATA%</c> on
    /// Windows), so that it is not beside the database.
    /// </summary>
    public static string DefaultPath
        => System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.ApplicationData, Environment.SpecialFolderOption.DoNotVerify), "ordo", "audit-key.pem");

    /// <summary>The key file.</summary>
    public string Path { get; }

    /// <summary>The public key (SubjectPublicKeyInfo, DER).</summary>
    public byte[] PublicKey { get; }

    /// <summary><c>sha256:</c> of <see cref="PublicKey"/>.</summary>
    public string KeyId { get; }

    /// <summary>Whether the file holds the private key.</summary>
    public bool CanSign { get; }

    /// <summary>Reads the key at <paramref name="path"/>, or creates it there (owner-only) when there is none.</summary>
    /// <exception cref="AuditKeyException">The file cannot be read or created, is not a P-256 key, or others can read it.</exception>
    public static AuditKey LoadOrCreate(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        path = System.IO.Path.GetFullPath(path);
        if (!File.Exists(path)) Create(path);
        var key = Load(path);
        if (!key.CanSign)
        {
            key.Dispose();
            throw new AuditKeyException(path, "it holds only a public key: it can verify checkpoints, not sign them");
        }

        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(path) & (UnixFileMode.GroupRead | UnixFileMode.OtherRead | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
        {
            key.Dispose();
            throw new AuditKeyException(path, $"other users can read or write it; make it owner-only (chmod 600 {path})");
        }

        return key;
    }

    /// <summary>Reads the key (private or public) at <paramref name="path"/>.</summary>
    /// <exception cref="AuditKeyException">There is no such file, or it is not a P-256 key in PEM.</exception>
    public static AuditKey Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        path = System.IO.Path.GetFullPath(path);
        string pem;
        try
        {
            pem = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new AuditKeyException(path, e is FileNotFoundException or DirectoryNotFoundException ? "there is no such file (take a checkpoint first, or point ORDO_AUDIT_KEY or audit.key in ordo.yaml at the key)" : e.Message, e);
        }

        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(pem);
            if (key.KeySize != 256 || key.ExportParameters(false).Curve.Oid.Value != ECCurve.NamedCurves.nistP256.Oid.Value)
            {
                throw new AuditKeyException(path, $"it is a {key.KeySize}-bit key, not ECDSA P-256");
            }

            var canSign = pem.Contains("PRIVATE KEY-----", StringComparison.Ordinal);
            return new AuditKey(path, key, canSign);
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
            key.Dispose();
            throw new AuditKeyException(path, "it is not an ECDSA P-256 key in PEM: " + e.Message, e);
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    /// <summary>Signs a statement of the audit log.</summary>
    /// <exception cref="AuditKeyException">The key is public only.</exception>
    public AuditCheckpoint Sign(long treeSize, byte[] root, DateTimeOffset time, byte[]? jobsDigest)
    {
        ArgumentNullException.ThrowIfNull(root);
        if (!CanSign) throw new AuditKeyException(Path, "it holds only a public key: it can verify checkpoints, not sign them");
        time = DateTimeOffset.FromUnixTimeMilliseconds(time.ToUnixTimeMilliseconds());
        var statement = AuditCheckpoint.StatementOf(treeSize, root, time, jobsDigest);
        return new AuditCheckpoint
        {
            TreeSize = treeSize, Root = root, Time = time, KeyId = KeyId, PublicKey = PublicKey, JobsDigest = jobsDigest,
            Signature = _key.SignData(statement, HashAlgorithmName.SHA256),
        };
    }

    /// <summary>Whether <paramref name="checkpoint"/> was signed by this key (its key id and its signature).</summary>
    public bool Verifies(AuditCheckpoint checkpoint)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        return string.Equals(checkpoint.KeyId, KeyId, StringComparison.Ordinal)
            && _key.VerifyData(checkpoint.Statement(), checkpoint.Signature, HashAlgorithmName.SHA256);
    }

    /// <summary>The public key in PEM, to hand to those who verify checkpoints without the private key.</summary>
    public string ExportPublicKeyPem() => _key.ExportSubjectPublicKeyInfoPem();

    /// <inheritdoc />
    public void Dispose() => _key.Dispose();

    private static void Create(string path)
    {
        var directory = System.IO.Path.GetDirectoryName(path)!;
        try
        {
            if (OperatingSystem.IsWindows()) Directory.CreateDirectory(directory);
            else if (!Directory.Exists(directory)) Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var pem = key.ExportPkcs8PrivateKeyPem();
            // Written whole under another name, then moved into place: a concurrent first use never reads half a key,
            // and the one that loses the race keeps the other's key.
            var temp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            using (var stream = new FileStream(temp, options))
            using (var writer = new StreamWriter(stream))
            {
                writer.Write(pem);
            }

            try
            {
                File.Move(temp, path, overwrite: false);
            }
            catch (IOException) when (File.Exists(path))
            {
                File.Delete(temp);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new AuditKeyException(path, "it cannot be created: " + e.Message, e);
        }
    }
}

/// <summary>The audit key cannot be used: the message names the file and what is wrong with it.</summary>
public sealed class AuditKeyException(string path, string problem, Exception? inner = null)
    : OrdoRefusedException($"audit key {path}: {problem}", inner)
{
    /// <summary>The key file.</summary>
    public string KeyPath { get; } = path;
}
