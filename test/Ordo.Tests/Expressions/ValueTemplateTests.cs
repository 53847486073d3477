using System.Text.Json;
using Ordo.Expressions;

namespace Ordo.Tests.Expressions;

public sealed class ValueTemplateTests
{
    private static readonly ExpressionEvaluator Evaluator = new();

    private static readonly ExpressionScope Scope = new()
    {
        Input = TestJobs.Json("""{"n": 3, "f": 2.5, "s": "text", "b": true, "nil": null, "list": [1, 2], "o": {"a": 1, "b": [true]}}"""),
    };

    private static JsonElement Render(string template) => ValueTemplate.FromString(template)!.Evaluate(Evaluator, Scope);

    [Theory]
    [InlineData("plain text")]
    [InlineData("")]
    [InlineData("$ {not} an expression")]
    [InlineData("costs $5 {approx}")]
    public void FromString_WithoutExpression_ReturnsNull(string text)
        => Assert.Null(ValueTemplate.FromString(text));

    [Theory]
    [InlineData("${ input.n }", JsonValueKind.Number, "3")]
    [InlineData("${input.n}", JsonValueKind.Number, "3")]
    [InlineData("${ input.f }", JsonValueKind.Number, "2.5")]
    [InlineData("${ input.n * 2 }", JsonValueKind.Number, "6")]
    [InlineData("${ input.b }", JsonValueKind.True, "true")]
    [InlineData("${ input.nil }", JsonValueKind.Null, "null")]
    [InlineData("${ input.s }", JsonValueKind.String, "\"text\"")]
    [InlineData("${ input.list }", JsonValueKind.Array, "[1,2]")]
    [InlineData("${ input.o }", JsonValueKind.Object, """{"a":1,"b":[true]}""")]
    [InlineData("${ { x: input.n } }", JsonValueKind.Object, """{"x":3}""")]
    [InlineData("${ input.list.map(x => x * 10) }", JsonValueKind.Array, "[10,20]")]
    public void Evaluate_ExactlyOneExpression_KeepsTheValueType(string template, JsonValueKind kind, string raw)
    {
        var value = Render(template);
        Assert.Equal(kind, value.ValueKind);
        Assert.Equal(raw, value.GetRawText());
    }

    [Theory]
    [InlineData("n=${ input.n }!", "n=3!")]
    [InlineData("${ input.n }${ input.n }", "33")]
    [InlineData("${ input.s } and ${ input.f }", "text and 2.5")]
    [InlineData("flag: ${ input.b }", "flag: true")]
    [InlineData("nothing: [${ input.nil }]", "nothing: []")]
    [InlineData("list: ${ input.list }", "list: [1,2]")]
    [InlineData("obj: ${ input.o }", """obj: {"a":1,"b":[true]}""")]
    [InlineData("built: ${ ({ k: input.list }) }", """built: {"k":[1,2]}""")]
    [InlineData("braces: ${ '}' + '{' }", "braces: }{")]
    [InlineData("tpl: ${ `${input.n}-${input.s}` }", "tpl: 3-text")]
    [InlineData("nested: ${ (() => { return { a: 1 }.a; })() }", "nested: 1")]
    public void Evaluate_TextAroundExpressions_Interpolates(string template, string expected)
    {
        var value = Render(template);
        Assert.Equal(JsonValueKind.String, value.ValueKind);
        Assert.Equal(expected, value.GetString());
    }

    [Theory]
    [InlineData("${ input.n")]
    [InlineData("text ${ input.n ")]
    [InlineData("${ '}' ")]
    [InlineData("${}")]
    [InlineData("a ${ } b")]
    public void FromString_UnclosedOrEmptyExpression_ThrowsFormatException(string template)
        => Assert.Throws<FormatException>(() => ValueTemplate.FromString(template));

    [Theory]
    [InlineData("${ input.n + }")]
    [InlineData("value ${ input..n }")]
    [InlineData("${ 1); globalThis.x = (1 }")]
    public void FromString_InvalidJavaScript_ThrowsExpressionSyntaxException(string template)
        => Assert.Throws<ExpressionSyntaxException>(() => ValueTemplate.FromString(template, "wf.yaml:1:1"));

    [Fact]
    public void FromJson_ObjectWithTemplates_EvaluatesEveryString()
    {
        var template = ValueTemplate.FromJson(TestJobs.Json("""{"count": "${ input.list.length }", "label": "n=${ input.n }", "fixed": 7, "items": ["${ input.s }", "x", {"deep": "${ input.b }"}]}"""));
        Assert.False(template.IsConstant);
        Assert.Equal("""{"count":2,"label":"n=3","fixed":7,"items":["text","x",{"deep":true}]}""", template.Evaluate(Evaluator, Scope).GetRawText());
    }

    [Fact]
    public void FromJson_WithoutTemplates_IsConstant()
    {
        var json = TestJobs.Json("""{"a": [1, "b", null], "c": {"d": false}}""");
        var template = ValueTemplate.FromJson(json);
        Assert.True(template.IsConstant);
        Assert.Equal(json.GetRawText(), template.Evaluate(Evaluator, new ExpressionScope()).GetRawText());
    }

    [Fact]
    public void Evaluate_FailingExpression_ThrowsExpressionEvaluationException()
        => Assert.Throws<ExpressionEvaluationException>(() => Render("${ input.missing.deeper }"));
}
