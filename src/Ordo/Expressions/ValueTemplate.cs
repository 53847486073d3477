using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Ordo.Expressions;

/// <summary>
/// A JSON-shaped value whose strings may hold expressions: a string that is exactly <c>${ expr }</c> takes the
/// expression's value (type kept); a string with <c>${ expr }</c> among other text is interpolated.
/// </summary>
public abstract class ValueTemplate
{
    /// <summary>Whether the template holds no expression.</summary>
    public abstract bool IsConstant { get; }

    /// <summary>Evaluates the template to a JSON value.</summary>
    /// <exception cref="ExpressionEvaluationException">An expression failed.</exception>
    public JsonElement Evaluate(ExpressionEvaluator evaluator, ExpressionScope scope)
    {
        if (this is ConstantTemplate c)
        {
            return c.Value;
        }

        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            Write(writer, evaluator, scope);
        }

        return JsonElementFactory.Parse(buffer.WrittenSpan);
    }

    /// <summary>Writes the evaluated value.</summary>
    protected internal abstract void Write(Utf8JsonWriter writer, ExpressionEvaluator evaluator, ExpressionScope scope);

    /// <summary>The template as written: constants as JSON, expressions as <c>${ … }</c> text (deterministic; used to hash definitions).</summary>
    internal JsonNode? Describe() => this switch
    {
        ConstantTemplate c => JsonNode.Parse(c.Value.GetRawText()),
        ExpressionTemplate e => JsonValue.Create("${" + e.Expression.Source + "}"),
        InterpolationTemplate i => JsonValue.Create(string.Concat(i.Parts.Select(p => p is CompiledExpression x ? "${" + x.Source + "}" : (string)p))),
        ObjectTemplate o => o.Properties.Aggregate(new JsonObject(), (obj, p) => { obj[p.Name] = p.Value.Describe(); return obj; }),
        ArrayTemplate a => new JsonArray(a.Items.Select(x => x.Describe()).ToArray()),
        _ => null,
    };

    /// <summary>A template that always gives <paramref name="value"/>.</summary>
    public static ValueTemplate Constant(JsonElement value) => new ConstantTemplate(value);

    /// <summary>Builds a template from a JSON value, compiling any <c>${ … }</c> found in its strings.</summary>
    /// <exception cref="ExpressionSyntaxException">An embedded expression is not valid JavaScript.</exception>
    /// <exception cref="FormatException">A <c>${</c> is never closed.</exception>
    public static ValueTemplate FromJson(JsonElement value, string location = "")
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
            {
                var props = value.EnumerateObject().Select(p => (p.Name, FromJson(p.Value, location))).ToList();
                return props.All(p => p.Item2.IsConstant) ? new ConstantTemplate(value) : new ObjectTemplate(props);
            }

            case JsonValueKind.Array:
            {
                var items = value.EnumerateArray().Select(e => FromJson(e, location)).ToList();
                return items.All(i => i.IsConstant) ? new ConstantTemplate(value) : new ArrayTemplate(items);
            }

            case JsonValueKind.String:
                return FromString(value.GetString()!, location) ?? new ConstantTemplate(value);

            default:
                return new ConstantTemplate(value);
        }
    }

    /// <summary>Compiles a string; returns null when it holds no expression.</summary>
    /// <exception cref="ExpressionSyntaxException">An embedded expression is not valid JavaScript.</exception>
    /// <exception cref="FormatException">A <c>${</c> is never closed.</exception>
    public static ValueTemplate? FromString(string text, string location = "")
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!TemplateParser.HasExpression(text))
        {
            return null;
        }

        var segments = TemplateParser.Parse(text, out var error);
        if (error is not null)
        {
            throw new FormatException(error);
        }

        if (segments.Count == 1 && segments[0].IsExpression && text.Trim() == "${" + segments[0].Text + "}")
        {
            return new ExpressionTemplate(CompiledExpression.Compile(segments[0].Text.Trim(), location));
        }

        return new InterpolationTemplate(segments.Select(s => s.IsExpression
            ? (object)CompiledExpression.Compile(s.Text.Trim(), location)
            : s.Text).ToList());
    }

    internal sealed class ConstantTemplate(JsonElement value) : ValueTemplate
    {
        public JsonElement Value { get; } = value;

        public override bool IsConstant => true;

        protected internal override void Write(Utf8JsonWriter writer, ExpressionEvaluator evaluator, ExpressionScope scope) => Value.WriteTo(writer);
    }

    internal sealed class ExpressionTemplate(CompiledExpression expression) : ValueTemplate
    {
        public CompiledExpression Expression { get; } = expression;

        public override bool IsConstant => false;

        protected internal override void Write(Utf8JsonWriter writer, ExpressionEvaluator evaluator, ExpressionScope scope)
            => evaluator.Evaluate(Expression, scope).WriteTo(writer);
    }

    internal sealed class InterpolationTemplate(IReadOnlyList<object> parts) : ValueTemplate
    {
        public IReadOnlyList<object> Parts { get; } = parts;

        public override bool IsConstant => false;

        protected internal override void Write(Utf8JsonWriter writer, ExpressionEvaluator evaluator, ExpressionScope scope)
        {
            var sb = new StringBuilder();
            foreach (var part in Parts)
            {
                sb.Append(part is CompiledExpression e ? evaluator.EvaluateText(e, scope) : (string)part);
            }

            writer.WriteStringValue(sb.ToString());
        }
    }

    internal sealed class ObjectTemplate(IReadOnlyList<(string Name, ValueTemplate Value)> properties) : ValueTemplate
    {
        public IReadOnlyList<(string Name, ValueTemplate Value)> Properties { get; } = properties;

        public override bool IsConstant => false;

        protected internal override void Write(Utf8JsonWriter writer, ExpressionEvaluator evaluator, ExpressionScope scope)
        {
            writer.WriteStartObject();
            foreach (var (name, value) in Properties)
            {
                writer.WritePropertyName(name);
                value.Write(writer, evaluator, scope);
            }

            writer.WriteEndObject();
        }
    }

    internal sealed class ArrayTemplate(IReadOnlyList<ValueTemplate> items) : ValueTemplate
    {
        public IReadOnlyList<ValueTemplate> Items { get; } = items;

        public override bool IsConstant => false;

        protected internal override void Write(Utf8JsonWriter writer, ExpressionEvaluator evaluator, ExpressionScope scope)
        {
            writer.WriteStartArray();
            foreach (var item in Items)
            {
                item.Write(writer, evaluator, scope);
            }

            writer.WriteEndArray();
        }
    }
}

/// <summary>A string that may interpolate expressions (prompts, URLs, messages).</summary>
public sealed class TextTemplate
{
    private readonly IReadOnlyList<object> _parts;

    private TextTemplate(string source, IReadOnlyList<object> parts)
    {
        Source = source;
        _parts = parts;
    }

    /// <summary>The template as written.</summary>
    public string Source { get; }

    /// <summary>Compiles a text template.</summary>
    /// <exception cref="ExpressionSyntaxException">An embedded expression is not valid JavaScript.</exception>
    /// <exception cref="FormatException">A <c>${</c> is never closed.</exception>
    public static TextTemplate Compile(string text, string location = "")
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!TemplateParser.HasExpression(text))
        {
            return new TextTemplate(text, [text]);
        }

        var segments = TemplateParser.Parse(text, out var error);
        if (error is not null)
        {
            throw new FormatException(error);
        }

        return new TextTemplate(text, segments.Select(s => s.IsExpression ? (object)CompiledExpression.Compile(s.Text.Trim(), location) : s.Text).ToList());
    }

    /// <summary>Renders the text.</summary>
    public string Render(ExpressionEvaluator evaluator, ExpressionScope scope)
    {
        ArgumentNullException.ThrowIfNull(evaluator);
        if (_parts.Count == 1 && _parts[0] is string s)
        {
            return s;
        }

        var sb = new StringBuilder();
        foreach (var part in _parts)
        {
            sb.Append(part is CompiledExpression e ? evaluator.EvaluateText(e, scope) : (string)part);
        }

        return sb.ToString();
    }
}
