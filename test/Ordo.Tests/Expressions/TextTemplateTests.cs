using Ordo.Expressions;

namespace Ordo.Tests.Expressions;

public sealed class TextTemplateTests
{
    private static readonly ExpressionEvaluator Evaluator = new();

    [Fact]
    public void Render_PlainText_IsReturnedAsIs()
    {
        var template = TextTemplate.Compile("You extract invoice lines.\nAnswer in JSON: { \"lines\": [] }");
        Assert.Equal("You extract invoice lines.\nAnswer in JSON: { \"lines\": [] }", template.Render(Evaluator, new ExpressionScope()));
    }

    [Fact]
    public void Render_InterpolatesExpressionsAndJsonValues()
    {
        var template = TextTemplate.Compile("You receive ${ input.invoices.length } invoice(s): ${ input.invoices }.");
        var scope = new ExpressionScope { Input = TestJobs.Json("""{"invoices": [{"id": "INV-1"}]}""") };
        Assert.Equal("""You receive 1 invoice(s): [{"id":"INV-1"}].""", template.Render(Evaluator, scope));
        Assert.Equal("You receive ${ input.invoices.length } invoice(s): ${ input.invoices }.", template.Source);
    }

    [Fact]
    public void Compile_UnclosedExpression_ThrowsFormatException()
        => Assert.Throws<FormatException>(() => TextTemplate.Compile("Hello ${ input.name"));

    [Fact]
    public void Compile_InvalidExpression_ThrowsExpressionSyntaxException()
        => Assert.Throws<ExpressionSyntaxException>(() => TextTemplate.Compile("Hello ${ input. }"));
}
