using Ordo.Expressions;

namespace Ordo.Tests.Expressions;

public sealed class CompiledExpressionTests
{
    [Theory]
    [InlineData("input.invoices.length > 3")]
    [InlineData("artifacts.finding.exceptions.length > 0 && !job.constraints.no_web")]
    [InlineData("({ total: input.lines.reduce((s, l) => s + l.amount, 0) })")]
    [InlineData("{ a: 1 }")]
    [InlineData("(() => { const x = 1; return x + 1; })()")]
    [InlineData("`line ${index}: ${item.sku}`")]
    [InlineData("input.x // a trailing comment")]
    [InlineData("tool.name.startsWith('web.')")]
    public void Compile_ValidExpression_KeepsItsSourceAndLocation(string source)
    {
        var expression = CompiledExpression.Compile(source, "wf.yaml:3:7 steps[0].next[0].when");
        Assert.Equal(source, expression.Source);
        Assert.Equal(source, expression.ToString());
        Assert.Equal("wf.yaml:3:7 steps[0].next[0].when", expression.Location);
    }

    [Theory]
    [InlineData("input.a +")]
    [InlineData("input.a ==")]
    [InlineData("(1")]
    [InlineData("a b")]
    [InlineData("var x = 1")]
    [InlineData("return 1")]
    [InlineData("if (x) { 1 }")]
    [InlineData("1 +* 2")]
    [InlineData("'unterminated")]
    [InlineData("")]
    public void Compile_InvalidJavaScript_ThrowsExpressionSyntaxException(string source)
    {
        var e = Assert.Throws<ExpressionSyntaxException>(() => CompiledExpression.Compile(source));
        Assert.Contains("invalid expression", e.Message, StringComparison.Ordinal);
        Assert.True(e.Line >= 1);
        Assert.True(e.Column >= 1);
        Assert.False(string.IsNullOrEmpty(e.Description));
    }

    [Fact]
    public void Compile_SyntaxError_ReportsTheLineAndColumnInsideTheExpression()
    {
        var e = Assert.Throws<ExpressionSyntaxException>(() => CompiledExpression.Compile("input.a &&\n  input.b ) 1"));
        Assert.Equal(2, e.Line);
        Assert.True(e.Column > 1);
    }

    [Theory]
    [InlineData("1); globalThis.x = 1; (1")]
    [InlineData("1); while (true) {} (1")]
    [InlineData("1); return (2")]
    public void Compile_TextThatEscapesTheExpression_IsRejected(string source)
        => Assert.Throws<ExpressionSyntaxException>(() => CompiledExpression.Compile(source));

    [Fact]
    public void Compile_Null_Throws()
        => Assert.Throws<ArgumentNullException>(() => CompiledExpression.Compile(null!));
}
