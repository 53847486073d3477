using System.Diagnostics;
using Microsoft.Extensions.Options;
using Ordo.Expressions;

namespace Ordo.Tests.Expressions;

/// <summary>
/// Expressions that build one huge value in a single built-in call (which no statement or memory check sees until
/// it has allocated) are refused up front, and an expression's result has a size limit.
/// </summary>
public sealed class ExpressionLimitsTests
{
    private readonly ExpressionEvaluator _evaluator = new();

    private ExpressionEvaluationException Fails(string expression, ExpressionEvaluator? evaluator = null)
        => Assert.Throws<ExpressionEvaluationException>(() => (evaluator ?? _evaluator).Evaluate(CompiledExpression.Compile(expression), new ExpressionScope()));

    [Theory]
    [InlineData("'x'.repeat(2 ** 30).length")]
    [InlineData("'abc'.repeat(2 ** 28)")]
    [InlineData("''.padStart(2 ** 30, 'ab')")]
    [InlineData("'a'.padEnd(2 ** 29)")]
    public void OneCallBuildingAHugeString_IsRefusedBeforeItAllocates(string expression)
    {
        var before = GC.GetTotalAllocatedBytes(precise: true);
        var e = Fails(expression);
        Assert.Contains("longer than 4194304 characters", e.Message, StringComparison.Ordinal);
        Assert.True(GC.GetTotalAllocatedBytes(precise: true) - before < 64L * 1024 * 1024, "the refused call allocated its result");
    }

    [Theory]
    // A shared sub-array repeated by reference: tiny in memory, billions of characters as text.
    [InlineData("(() => { let a = ['xxxxxxxxxxxxxxxx']; for (let i = 0; i < 30; i++) a = [a, a]; return JSON.stringify(a).length; })()", "JSON.stringify would produce more than")]
    [InlineData("(() => { let a = ['xxxxxxxxxxxxxxxx']; for (let i = 0; i < 30; i++) a = [a, a]; return JSON.stringify(a, null, 2).length; })()", "JSON.stringify would produce more than")]
    [InlineData("new Array(1 << 16).fill('x'.repeat(100)).join('').length", "Array.prototype.join would produce more than")]
    [InlineData("(() => { const s = 'y'.repeat(1 << 20); return [s, s, s, s, s].join(''); })()", "Array.prototype.join would produce more than")]
    public void StringifyOrJoinOfAHugeValue_IsMeasuredFirst(string expression, string message)
        => Assert.Contains(message, Fails(expression).Message, StringComparison.Ordinal);

    [Fact]
    public void AResultLargerThanTheLimit_IsRefused_AfterWritingOnlyThatMuch()
    {
        // Each element is small and the whole stays under the memory limit; the JSON result would be far larger than allowed.
        var evaluator = new ExpressionEvaluator(Options.Create(new ExpressionOptions { MaxResultBytes = 64 * 1024 }));
        var e = Fails("(() => { const s = 'z'.repeat(1000); const a = []; for (let i = 0; i < 1000; i++) a.push(s); return a; })()", evaluator);
        Assert.Contains("larger than", e.Message, StringComparison.Ordinal);
        Assert.Contains("as JSON", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AResultOfSharedSubArrays_IsRefused_Quickly()
    {
        var watch = Stopwatch.StartNew();
        var wide = Fails("(() => { let a = ['xxxxxxxxxxxxxxxx']; for (let i = 0; i < 40; i++) a = [a, a]; return a; })()");
        Assert.Contains("larger than 4 MB as JSON", wide.Message, StringComparison.Ordinal);
        var deep = Fails("(() => { let a = [1]; for (let i = 0; i < 70; i++) a = [a]; return a; })()");
        Assert.Contains("nested more than 60 levels", deep.Message, StringComparison.Ordinal);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), $"refusing took {watch.Elapsed}");
    }

    [Fact]
    public void ScriptsCannotCatchTheLimit_OrReachTheUnguardedBuiltIns()
    {
        var e = Fails("(() => { try { return JSON.stringify((() => { let a = ['x'.repeat(64)]; for (let i = 0; i < 30; i++) a = [a, a]; return a; })()); } catch (err) { return 'caught'; } })()");
        Assert.Contains("JSON.stringify would produce more than", e.Message, StringComparison.Ordinal);
        var hidden = _evaluator.Evaluate(CompiledExpression.Compile("[typeof __ordoMeasureJson, typeof __ordoMeasureJoin, Object.keys(String.prototype).length]"), new ExpressionScope());
        Assert.Equal("""["undefined","undefined",0]""", hidden.GetRawText());
    }

    [Theory]
    [InlineData("'ab'.repeat(3)", "\"ababab\"")]
    [InlineData("'7'.padStart(3, '0') + '7'.padEnd(3, '.')", "\"0077..\"")]
    [InlineData("[1, null, 'a', undefined].join()", "\"1,,a,\"")]
    [InlineData("[1, 2].join(' and ')", "\"1 and 2\"")]
    [InlineData("JSON.stringify({ a: [1, { b: 'c' }] }) === '{\"a\":[1,{\"b\":\"c\"}]}'", "true")]
    [InlineData("JSON.stringify({ a: 1 }, null, 1) === '{\\n \"a\": 1\\n}'", "true")]
    [InlineData("JSON.stringify(() => 1) === undefined", "true")]
    [InlineData("'x'.repeat(0) + 'y'.repeat(-0)", "\"\"")]
    public void OrdinaryUsesOfTheGuardedBuiltIns_BehaveAsUsual(string expression, string expected)
        => Assert.Equal(expected, _evaluator.Evaluate(CompiledExpression.Compile(expression), new ExpressionScope()).GetRawText());

    [Fact]
    public void TrivialExpressions_OnAMachineWithNoCpuToSpare_DoNotTimeOut_ButABusyLoopStillDoes()
    {
        // The time limit counts the expression's own work: a thread that waits for a CPU (here, behind a spinning
        // thread per core and more) does not fail a trivial route condition.
        var evaluator = new ExpressionEvaluator(Options.Create(new ExpressionOptions { Timeout = TimeSpan.FromMilliseconds(20), MaxStatements = 100_000_000 }));
        var condition = CompiledExpression.Compile("job.attempt < 3 && [1, 2, 3].length === 3");
        var scope = new ExpressionScope();
        new ExpressionEvaluator().EvaluateBoolean(condition, scope); // compiled once, before the clock matters
        using var stop = new CancellationTokenSource();
        var hogs = Enumerable.Range(0, Environment.ProcessorCount * 4).Select(_ => new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                Thread.SpinWait(1000);
            }
        }) { IsBackground = true, Priority = ThreadPriority.Highest }).ToList();
        hogs.ForEach(t => t.Start());
        try
        {
            var failures = 0;
            for (var i = 0; i < 300; i++)
            {
                try
                {
                    evaluator.EvaluateBoolean(condition, scope);
                }
                catch (ExpressionEvaluationException e) when (e.Message.Contains("ran longer than", StringComparison.Ordinal))
                {
                    failures++;
                }
            }

            Assert.Equal(0, failures);
            var busy = Assert.Throws<ExpressionEvaluationException>(() => evaluator.Evaluate(CompiledExpression.Compile("(() => { for (;;) {} })()"), scope));
            Assert.Contains("ran longer than 20ms", busy.Message, StringComparison.Ordinal);
        }
        finally
        {
            stop.Cancel();
            hogs.ForEach(t => t.Join());
        }
    }

    [Fact]
    public void StringifyOfACycle_StillFailsAsJavaScriptSays()
    {
        var e = Fails("(() => { const a = {}; a.a = a; return JSON.stringify(a); })()");
        Assert.DoesNotContain("would produce more than", e.Message, StringComparison.Ordinal);
    }
}
