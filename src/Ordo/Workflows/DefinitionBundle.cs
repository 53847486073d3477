using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Ordo.Workflows;

/// <summary>
/// Everything a workflow was loaded from: the workflow file, <c>ordo.yaml</c> and every file they name, by path.
/// A job stores the bundle it was submitted with, so resuming, replaying or inspecting it never re-reads files.
/// </summary>
public sealed class DefinitionBundle
{
    /// <summary>The format of the stored bundle.</summary>
    public int Format { get; init; } = 1;
    /// <summary>The workflow file's key in <see cref="Files"/>.</summary>
    public required string Entry { get; init; }
    /// <summary>The config file's key, if there was one.</summary>
    public string? Config { get; init; }
    /// <summary>The absolute directory the keys are relative to; runtime resources (SQLite files of connections) resolve against it.</summary>
    public required string Root { get; init; }
    /// <summary>File contents by key (paths relative to <see cref="Root"/>, with <c>/</c>).</summary>
    public required SortedDictionary<string, string> Files { get; init; }
    /// <summary>For workflows built in code: a description of the graph (the code itself lives in the host).</summary>
    public string? CodeDefined { get; init; }
    /// <summary>
    /// Folders the loading found to exist (keys like <see cref="Files"/>), so that a folder the project names but the
    /// workflow reads nothing from (an unused <c>prompts:</c> folder) still exists when the bundle is loaded again.
    /// </summary>
    public List<string>? Directories { get; init; }

    /// <summary>The sub-workflows pinned with the workflow: <c>name@version</c> → the key of its file in <see cref="Files"/>.</summary>
    public SortedDictionary<string, string>? Workflows { get; init; }

    /// <summary>Serializes the bundle (deterministic: keys sorted).</summary>
    public byte[] ToBytes() => JsonSerializer.SerializeToUtf8Bytes(this, BundleJsonContext.Default.DefinitionBundle);

    /// <summary>The content hash: <c>sha256:</c> of the serialized bundle without <see cref="Root"/>.</summary>
    public string ComputeHash()
    {
        var copy = new DefinitionBundle { Format = Format, Entry = Entry, Config = Config, Root = "", Files = Files, CodeDefined = CodeDefined, Workflows = Workflows, Directories = Directories };
        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(copy.ToBytes()));
    }

    /// <summary>Reads a stored bundle.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a bundle.</exception>
    public static DefinitionBundle FromBytes(byte[] bytes)
    {
        try
        {
            return JsonSerializer.Deserialize(bytes, BundleJsonContext.Default.DefinitionBundle) ?? throw new InvalidDataException("empty definition");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException("stored definition is not readable: " + e.Message, e);
        }
    }

    /// <summary>Computes <c>sha256:</c> of a text (prompts are identified this way).</summary>
    public static string HashText(string content) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(content)));
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(DefinitionBundle))]
internal sealed partial class BundleJsonContext : JsonSerializerContext;
