using System.Text.Json;
using System.Text.RegularExpressions;
using Ordo.Expressions;
using Ordo.Schemas;
using Ordo.Workflows.Yaml;

namespace Ordo.Workflows.Loading;

/// <summary>State shared by the loaders of one workflow: the file source, the problems found, the options.</summary>
internal sealed partial class LoadContext(DefinitionFileSource files, WorkflowLoadOptions options, CancellationToken cancellationToken)
{
    public DefinitionFileSource Files { get; } = files;

    public ProblemList Problems { get; } = new();

    public WorkflowLoadOptions Options { get; } = options;

    /// <summary>
    /// Set when the project had problems, so its plugins were not loaded: code agents cannot be looked up, and a
    /// "not registered" error would only repeat the project's problem in other words.
    /// </summary>
    public bool PluginsNotLoaded { get; set; }

    /// <summary>Whether a code agent type is known, when that can be told (else true: the problem is reported elsewhere).</summary>
    public bool CodeAgentKnown(string type) => PluginsNotLoaded || Options.CodeAgentExists is not { } exists || exists(type);

    public CancellationToken CancellationToken { get; } = cancellationToken;

    /// <summary>The YAML node each loaded step came from, so that reference problems point at the reference itself.</summary>
    public Dictionary<StepDefinition, YNode> StepNodes { get; } = new(ReferenceEqualityComparer.Instance);

    /// <summary>The YAML node of each agent, by name.</summary>
    public Dictionary<string, YNode> AgentNodes { get; } = new(StringComparer.Ordinal);

    /// <summary>Whether a text is an absolute http(s) URL (on Unix, <c>/path</c> would otherwise pass as a file URI).</summary>
    public static bool IsHttpUrl(string text)
        => Uri.TryCreate(text, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps);

    public static string Resolve(string baseDirectory, string path)
        => Path.GetFullPath(Path.IsPathRooted(path) ? path : Path.Combine(baseDirectory, path));

    /// <summary>Reads and parses a YAML file that <paramref name="referencedFrom"/> names; reports a missing file there.</summary>
    public YNode? LoadYaml(string absolutePath, YNode? referencedFrom, string what)
    {
        var text = Files.Read(absolutePath);
        if (text is null)
        {
            if (referencedFrom is { } at)
            {
                Problems.Add(at, $"{what} '{Files.Display(absolutePath)}' does not exist");
            }
            else
            {
                Problems.Add(Files.Display(absolutePath), 0, 0, "", $"{what} does not exist");
            }

            return null;
        }

        return YamlDocumentLoader.Load(Files.Display(absolutePath), text, Problems);
    }

    /// <summary>
    /// Loads a JSON Schema given inline (a YAML mapping), as <c>{ $ref: file }</c> or as a bare file name
    /// (<c>schema: schemas/x.json</c>), files relative to <paramref name="baseDirectory"/>.
    /// </summary>
    public async Task<JsonSchemaContract?> LoadSchemaAsync(YNode node, string baseDirectory)
    {
        YNode? fileNode = null;
        if (node.IsScalar && !node.IsNull && !string.IsNullOrWhiteSpace(node.Scalar))
        {
            fileNode = node;
        }
        else if (!node.IsMapping)
        {
            Problems.Add(node, $"expected a JSON Schema (a mapping, a file name, or {{ $ref: file.json }}), found {node.Describe()}");
            return null;
        }
        else
        {
            var entries = node.Entries().ToList();
            if (entries.Count == 1 && entries[0].Key == "$ref" && entries[0].Value.IsScalar && !(entries[0].Value.Scalar ?? "").StartsWith('#'))
            {
                fileNode = entries[0].Value;
            }
        }

        string json;
        string documentPath;
        if (fileNode is { } refNode)
        {
            documentPath = Resolve(baseDirectory, refNode.Scalar!);
            var text = Files.Read(documentPath);
            if (text is null)
            {
                Problems.Add(refNode, $"schema file '{Files.Display(documentPath)}' does not exist");
                return null;
            }

            if (documentPath.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || documentPath.EndsWith(".yml", StringComparison.OrdinalIgnoreCase))
            {
                var doc = YamlDocumentLoader.Load(Files.Display(documentPath), text, Problems);
                if (doc is null) return null;
                json = YamlJson.ToElement(doc.Value).GetRawText();
            }
            else
            {
                json = text;
                try
                {
                    using var _ = JsonDocument.Parse(json);
                }
                catch (JsonException e)
                {
                    Problems.Add(Files.Display(documentPath), (int)(e.LineNumber ?? 0) + 1, (int)(e.BytePositionInLine ?? 0) + 1, "", "invalid JSON: " + Json.Describe(e));
                    return null;
                }
            }
        }
        else
        {
            json = YamlJson.ToElement(node).GetRawText();
            documentPath = Path.Combine(baseDirectory, "inline-schema.json");
        }

        try
        {
            return await JsonSchemaContract.FromJsonAsync(json, documentPath, Files.Read, CancellationToken).ConfigureAwait(false);
        }
        catch (InvalidDataException e)
        {
            Problems.Add(node, e.Message);
            return null;
        }
    }

    /// <summary>Compiles a condition: raw JavaScript, or one <c>${ expr }</c>.</summary>
    public CompiledExpression? Condition(YNode? node)
    {
        if (node is not { } n || n.IsNull) return null;
        if (!n.IsScalar)
        {
            Problems.Add(n, $"expected an expression (a string), found {n.Describe()}");
            return null;
        }

        var text = n.Scalar!;
        if (text.Contains(SecretMarker, StringComparison.Ordinal))
        {
            ReportSecretOnce(n, "expressions");
            return null;
        }

        var source = TemplateParser.Unwrap(text) ?? text;
        return Compile(n, source);
    }

    public CompiledExpression? Compile(YNode at, string source)
    {
        try
        {
            return CompiledExpression.Compile(source.Trim(), $"{at.File}:{at.Line}:{at.Column} {at.Path}");
        }
        catch (ExpressionSyntaxException e)
        {
            Problems.Add(at, e.Message);
            return null;
        }
    }

    /// <summary>Compiles a value whose strings may hold <c>${ … }</c>.</summary>
    public ValueTemplate? Template(YNode? node)
    {
        if (node is not { } n) return null;
        var where = $"{n.File}:{n.Line}:{n.Column} {n.Path}";
        switch (n.Node)
        {
            case YamlDotNet.RepresentationModel.YamlMappingNode:
            {
                var props = new List<(string, ValueTemplate)>();
                var ok = true;
                foreach (var (key, _, value) in n.Entries())
                {
                    var t = Template(value);
                    if (t is null) ok = false;
                    else props.Add((key, t));
                }

                if (!ok) return null;
                return props.All(p => p.Item2.IsConstant) ? ValueTemplate.Constant(YamlJson.ToElement(n)) : new ValueTemplate.ObjectTemplate(props);
            }

            case YamlDotNet.RepresentationModel.YamlSequenceNode:
            {
                var items = new List<ValueTemplate>();
                var ok = true;
                foreach (var item in n.Items())
                {
                    // Every item is compiled, so that all of their problems are reported at once.
                    var t = Template(item);
                    if (t is null) ok = false;
                    else items.Add(t);
                }

                if (!ok) return null;
                return items.All(i => i.IsConstant) ? ValueTemplate.Constant(YamlJson.ToElement(n)) : new ValueTemplate.ArrayTemplate(items);
            }

            default:
                if (n.Scalar is { } secret && secret.Contains(SecretMarker, StringComparison.Ordinal))
                {
                    ReportSecretOnce(n, "templates");
                    return null;
                }

                if (n.Scalar is { } s && TemplateParser.HasExpression(s))
                {
                    try
                    {
                        return ValueTemplate.FromString(s, where);
                    }
                    catch (ExpressionSyntaxException e)
                    {
                        Problems.Add(n, e.Message);
                        return null;
                    }
                    catch (FormatException e)
                    {
                        Problems.Add(n, e.Message);
                        return null;
                    }
                }

                return ValueTemplate.Constant(YamlJson.ToElement(n));
        }
    }

    private const string SecretMarker = "${secret:";

    /// <summary>
    /// Reports a secret where an expression or a template value is expected, unless <see cref="RejectSecrets"/> already
    /// did (it runs over whole workflow files): one problem, not also a JavaScript syntax error.
    /// </summary>
    private void ReportSecretOnce(YNode node, string where)
    {
        if (!Problems.Items.Any(p => p.File == node.File && p.Line == node.Line && p.Column == node.Column && p.Path == node.Path))
        {
            Problems.Add(node, $"secrets (${{secret:…}}) may appear only in model and tool definitions, not in {where}");
        }
    }

    /// <summary>Reports every <c>${secret:NAME}</c> of a model or tool definition whose secret is set but too short to be redacted.</summary>
    public void CheckSecretLengths(YNode node)
    {
        if (Options.SecretTooShort is not { } tooShort) return;
        if (node.IsScalar)
        {
            foreach (var name in Gateway.SecretResolver.References(node.Scalar).Distinct(StringComparer.Ordinal))
            {
                if (tooShort(name))
                {
                    Problems.Add(node, $"secret {name} is shorter than {Gateway.SecretResolver.MinLength} characters, too short to be told apart from other text and redacted");
                }
            }

            return;
        }

        foreach (var child in node.IsMapping ? node.Entries().Select(e => e.Value) : node.Items())
        {
            CheckSecretLengths(child);
        }
    }

    /// <summary>Reports any <c>${secret:…}</c> in a subtree where secrets are not allowed.</summary>
    public void RejectSecrets(YNode node, string where)
    {
        if (node.IsScalar)
        {
            if (node.Scalar is { } s && s.Contains(SecretMarker, StringComparison.Ordinal))
            {
                Problems.Add(node, $"secrets (${{secret:…}}) may appear only in model and tool definitions, not in {where}");
            }

            return;
        }

        foreach (var child in node.IsMapping ? node.Entries().Select(e => e.Value) : node.Items())
        {
            RejectSecrets(child, where);
        }
    }

    /// <summary>
    /// Replaces <c>${env:NAME}</c> with the variable's value, or <c>${env:NAME:-default}</c> with the default when it is
    /// unset or empty; reports a missing variable.
    /// </summary>
    public string? ResolveEnv(YNode at, string? text)
    {
        if (text is null || !text.Contains("${env:", StringComparison.Ordinal)) return text;
        var missing = new List<string>();
        var result = EnvReference().Replace(text, m =>
        {
            var value = Environment.GetEnvironmentVariable(m.Groups[1].Value);
            if (string.IsNullOrEmpty(value) && m.Groups[2].Success) return m.Groups[2].Value;
            if (value is null) missing.Add(m.Groups[1].Value);
            return value ?? "";
        });
        if (missing.Count > 0)
        {
            Problems.Add(at, $"environment variable {string.Join(", ", missing)} is not set");
            return null;
        }

        return result;
    }

    [GeneratedRegex(@"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")]
    private static partial Regex EnvReference();
}
