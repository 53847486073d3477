using System.Globalization;
using System.Text.Json;

namespace Ordo.Audit;

/// <summary>
/// The JSON form of checkpoints: the file <c>ordo audit checkpoint --out</c> writes (format
/// <c>ordo-audit-checkpoint/1</c>, with the job heads) and the body of <c>GET /v1/audit/checkpoint</c> (the same fields
/// without <c>jobs</c>).
/// </summary>
public static class AuditCheckpointJson
{
    /// <summary>The value of the <c>format</c> field.</summary>
    public const string Format = "ordo-audit-checkpoint/1";

    /// <summary>Writes a checkpoint as one JSON object; <paramref name="jobs"/> are listed when given.</summary>
    public static void Write(Utf8JsonWriter writer, AuditCheckpoint checkpoint, IReadOnlyList<CheckpointJob>? jobs = null)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(checkpoint);
        writer.WriteStartObject();
        writer.WriteString("format", Format);
        writer.WriteNumber("tree_size", checkpoint.TreeSize);
        writer.WriteString("root", Convert.ToHexStringLower(checkpoint.Root));
        writer.WriteString("time", checkpoint.Time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
        writer.WriteString("key_id", checkpoint.KeyId);
        writer.WriteString("public_key", Convert.ToBase64String(checkpoint.PublicKey));
        if (checkpoint.JobsDigest is { } digest) writer.WriteString("jobs_digest", Convert.ToHexStringLower(digest)); else writer.WriteNull("jobs_digest");
        writer.WriteString("signature", Convert.ToBase64String(checkpoint.Signature));
        if (jobs is not null)
        {
            writer.WriteStartArray("jobs");
            foreach (var job in jobs)
            {
                writer.WriteStartObject();
                writer.WriteString("id", job.JobId.Value);
                writer.WriteNumber("seq", job.Seq);
                writer.WriteString("head", Convert.ToHexStringLower(job.Head));
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
        }

        writer.WriteEndObject();
    }

    /// <summary>Writes a checkpoint file (the statement and its job heads) to <paramref name="path"/>, replacing it whole.</summary>
    public static async Task WriteFileAsync(string path, AuditCheckpointFile file, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(file);
        var full = Path.GetFullPath(path);
        var temp = full + "." + Guid.NewGuid().ToString("N") + ".tmp";
        await using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
        {
            await using var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
            Write(writer, file.Checkpoint, file.Jobs);
            await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        File.Move(temp, full, overwrite: true);
    }

    /// <summary>Reads a checkpoint file (or the body of <c>GET /v1/audit/checkpoint</c>, which has no jobs).</summary>
    /// <exception cref="CheckpointFileException">The file cannot be read, is not JSON, or a field is missing or malformed: the message names the file and the field.</exception>
    public static async Task<AuditCheckpointFile> ReadFileAsync(string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = Path.GetFullPath(path);
        byte[] bytes;
        try
        {
            bytes = await File.ReadAllBytesAsync(full, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointFileException(full, e is FileNotFoundException or DirectoryNotFoundException ? "there is no such file" : e.Message, e);
        }

        return Parse(full, bytes);
    }

    /// <summary>Parses a checkpoint; <paramref name="source"/> names where it came from in errors.</summary>
    /// <exception cref="CheckpointFileException">It is not JSON, or a field is missing or malformed.</exception>
    public static AuditCheckpointFile Parse(string source, ReadOnlySpan<byte> json)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json.ToArray());
        }
        catch (JsonException e)
        {
            throw new CheckpointFileException(source, $"it is not JSON (line {e.LineNumber + 1}): {e.Message}", e);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new CheckpointFileException(source, "it is not a JSON object");
            var format = Text(source, root, "format");
            if (format != Format) throw new CheckpointFileException(source, $"format is '{format}', expected '{Format}'");
            var size = root.TryGetProperty("tree_size", out var s) && s.ValueKind == JsonValueKind.Number && s.TryGetInt64(out var n) && n >= 0
                ? n : throw new CheckpointFileException(source, "tree_size is missing or not a whole number of 0 or more");
            var rootHash = Hex(source, root, "root", MerkleHash.Size);
            var timeText = Text(source, root, "time");
            if (!DateTimeOffset.TryParse(timeText, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time))
            {
                throw new CheckpointFileException(source, $"time '{timeText}' is not a date and time");
            }

            var keyId = Text(source, root, "key_id");
            var publicKey = Base64(source, root, "public_key");
            byte[]? jobsDigest = root.TryGetProperty("jobs_digest", out var d) && d.ValueKind != JsonValueKind.Null ? Hex(source, root, "jobs_digest", 32) : null;
            var signature = Base64(source, root, "signature");
            var jobs = new List<CheckpointJob>();
            if (root.TryGetProperty("jobs", out var list) && list.ValueKind != JsonValueKind.Null)
            {
                if (list.ValueKind != JsonValueKind.Array) throw new CheckpointFileException(source, "jobs is not an array");
                var i = 0;
                foreach (var job in list.EnumerateArray())
                {
                    var field = $"jobs[{i}]";
                    if (job.ValueKind != JsonValueKind.Object) throw new CheckpointFileException(source, $"{field} is not an object");
                    var id = Text(source, job, "id", field + ".");
                    var seq = job.TryGetProperty("seq", out var q) && q.ValueKind == JsonValueKind.Number && q.TryGetInt64(out var sq) && sq >= 1
                        ? sq : throw new CheckpointFileException(source, $"{field}.seq is missing or not a whole number of 1 or more");
                    jobs.Add(new CheckpointJob(new JobId(id), seq, Hex(source, job, "head", 32, field + ".")));
                    i++;
                }
            }

            if (jobs.Count > 0 && jobsDigest is null) throw new CheckpointFileException(source, "it lists jobs but has no jobs_digest");
            var checkpoint = new AuditCheckpoint
            {
                TreeSize = size, Root = rootHash, Time = time, KeyId = keyId, PublicKey = publicKey, JobsDigest = jobsDigest, Signature = signature,
            };
            return new AuditCheckpointFile(checkpoint, jobs);
        }
    }

    private static string Text(string source, JsonElement e, string name, string prefix = "")
        => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String && v.GetString() is { Length: > 0 } text
            ? text : throw new CheckpointFileException(source, $"{prefix}{name} is missing or not a non-empty string");

    private static byte[] Hex(string source, JsonElement e, string name, int length, string prefix = "")
    {
        var text = Text(source, e, name, prefix);
        try
        {
            var bytes = Convert.FromHexString(text);
            if (bytes.Length == length) return bytes;
        }
        catch (FormatException)
        {
        }

        throw new CheckpointFileException(source, $"{prefix}{name} is not {length * 2} hex digits");
    }

    private static byte[] Base64(string source, JsonElement e, string name)
    {
        var text = Text(source, e, name);
        try
        {
            return Convert.FromBase64String(text);
        }
        catch (FormatException ex)
        {
            throw new CheckpointFileException(source, $"{name} is not base64", ex);
        }
    }
}

/// <summary>A checkpoint file cannot be used: the message names the file and what is wrong with it.</summary>
public sealed class CheckpointFileException(string path, string problem, Exception? inner = null)
    : OrdoRefusedException($"checkpoint {path}: {problem}", inner)
{
    /// <summary>The file.</summary>
    public string FilePath { get; } = path;
}
