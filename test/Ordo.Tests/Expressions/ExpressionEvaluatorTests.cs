using System.Text.Json;
using Microsoft.Extensions.Options;
using Ordo.Expressions;

namespace Ordo.Tests.Expressions;

public sealed class ExpressionEvaluatorTests
{
    private readonly ExpressionEvaluator _evaluator = new();

    private static ExpressionScope Input(string json) => new() { Input = TestJobs.Json(json) };

    private JsonElement Eval(string expression, ExpressionScope? scope = null)
        => _evaluator.Evaluate(CompiledExpression.Compile(expression), scope ?? new ExpressionScope());

    private string Raw(string expression, ExpressionScope? scope = null) => Eval(expression, scope).GetRawText();

    private ExpressionEvaluationException Fails(string expression, ExpressionScope? scope = null)
        => Assert.Throws<ExpressionEvaluationException>(() => Eval(expression, scope));

    [Theory]
    [InlineData("1 + 2", "3")]
    [InlineData("6 / 2", "3")]
    [InlineData("2 ** 40", "1099511627776")]
    [InlineData("-7", "-7")]
    [InlineData("1 / 4", "0.25")]
    [InlineData("0.1 + 0.2 > 0.3", "true")]
    [InlineData("'a' + 1", "\"a1\"")]
    [InlineData("null", "null")]
    [InlineData("undefined", "null")]
    public void Evaluate_Scalars_ConvertToJsonWithIntegersKeptIntegral(string expression, string expected)
        => Assert.Equal(expected, Raw(expression));

    [Fact]
    public void Evaluate_IntegerComputedFromInput_IsAnInt64()
    {
        var result = Eval("input.n * 2", Input("""{"n": 21}"""));
        Assert.Equal(JsonValueKind.Number, result.ValueKind);
        Assert.True(result.TryGetInt64(out var n));
        Assert.Equal(42, n);
        Assert.Equal("42", result.GetRawText());
    }

    [Fact]
    public void Evaluate_ObjectsAndArrays_ConvertToJson()
    {
        var raw = Raw("({ n: 1, f: 2.5, s: 'x', l: [1, 'two', null], o: { ok: true }, u: undefined, fn: () => 1 })");
        Assert.Equal("""{"n":1,"f":2.5,"s":"x","l":[1,"two",null],"o":{"ok":true}}""", raw);
    }

    [Fact]
    public void Evaluate_InputValue_IsReturnedUnchanged()
    {
        var scope = Input("""{"a": {"b": [1, 2.5, {"c": "d"}], "e": null}}""");
        Assert.Equal("""{"b":[1,2.5,{"c":"d"}],"e":null}""", Raw("input.a", scope));
        Assert.Equal("3", Raw("input.a.b.length", scope));
        Assert.Equal("\"d\"", Raw("input.a.b[2].c", scope));
    }

    [Fact]
    public void Evaluate_InputDefaultsToTheJobStateInput()
    {
        var state = new TestJobs("""{"invoices": [1, 2, 3]}""").Build();
        Assert.Equal("3", Raw("input.invoices.length", new ExpressionScope { State = state }));
    }

    [Fact]
    public void Evaluate_SpreadAndKeysOfInput_Work()
    {
        var scope = Input("""{"a": 1, "b": 2}""");
        Assert.Equal("""["a","b"]""", Raw("Object.keys(input)", scope));
        Assert.Equal("""{"a":1,"b":2,"c":3}""", Raw("({ ...input, c: 3 })", scope));
        Assert.Equal("""{"a":1,"b":2}""", Eval("JSON.stringify(input)", scope).GetString());
    }

    [Fact]
    public void Evaluate_CyclicObject_FailsClearly()
    {
        var e = Fails("(() => { const a = {}; a.self = a; return a; })()");
        Assert.Contains("contains itself (a cycle)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_FunctionResult_Fails()
        => Fails("() => 1");

    [Fact]
    public void Artifacts_ShowOnlyVerifiedValues()
    {
        var state = new TestJobs()
            .Artifact("good", """{"x": 1}""")
            .Artifact("held", """{"x": 2}""", "quarantined")
            .Artifact("bad", """{"x": 3}""", "rejected")
            .Build();
        var scope = new ExpressionScope { State = state };
        Assert.Equal("1", Raw("artifacts.good.x", scope));
        Assert.Equal("true", Raw("artifacts.held === undefined && artifacts.bad === undefined", scope));
        Assert.Equal("""["good"]""", Raw("Object.keys(artifacts)", scope));
    }

    [Fact]
    public void Artifacts_Quarantined_AreHiddenWithoutIncludeQuarantined()
    {
        var state = new TestJobs().Artifact("held", """{"x": 2}""", "quarantined").Build();
        var scope = new ExpressionScope { State = state };
        Assert.Equal("true", Raw("artifacts.quarantined === undefined", scope));
        Fails("artifacts.quarantined.held.x", scope);
    }

    [Fact]
    public void Artifacts_Quarantined_AreVisibleWithIncludeQuarantined()
    {
        var state = new TestJobs()
            .Artifact("finding", """{"v": 1}""")
            .Artifact("finding", """{"v": 2}""", "quarantined")
            .Build();
        var scope = new ExpressionScope { State = state, IncludeQuarantined = true };
        Assert.Equal("2", Raw("artifacts.quarantined.finding.v", scope));
        Assert.Equal("1", Raw("artifacts.finding.v", scope));
    }

    [Fact]
    public void Artifacts_ShowTheLatestVerifiedVersion()
    {
        var state = new TestJobs()
            .Artifact("a", """{"v": 1}""")
            .Artifact("a", """{"v": 2}""")
            .Artifact("a", """{"v": 3}""", "rejected")
            .Build();
        Assert.Equal("2", Raw("artifacts.a.v", new ExpressionScope { State = state }));
    }

    [Fact]
    public void Job_ExposesIdTenantConstraintsAndAttempt()
    {
        var jobs = new TestJobs(tenant: "globex");
        var scope = new ExpressionScope
        {
            State = jobs.Build(),
            Constraints = TestJobs.Json("""{"no_web": true, "max_cost": 2.5}"""),
            Attempt = 3,
        };
        Assert.Equal($"\"{jobs.JobId.Value}\"", Raw("job.id", scope));
        Assert.Equal("\"globex\"", Raw("job.tenant", scope));
        Assert.Equal("true", Raw("job.constraints.no_web", scope));
        Assert.Equal("2.5", Raw("job.constraints.max_cost", scope));
        Assert.Equal("3", Raw("job.attempt", scope));
    }

    [Fact]
    public void Job_WithoutConstraints_HasAnEmptyReadOnlyConstraintsObject()
    {
        Assert.Equal("true", Raw("job.constraints.no_web === undefined && job.attempt === 1", new ExpressionScope()));
        Fails("(() => { job.constraints.no_web = true; return 1; })()");
    }

    [Fact]
    public void Steps_ExposeStatusOutputAndAttempts()
    {
        var state = new TestJobs()
            .Succeeded("extract", """{"lines": [1, 2]}""", attempts: 2)
            .Failed("post", attempts: 3)
            .Build();
        var scope = new ExpressionScope { State = state };
        Assert.Equal("\"succeeded\"", Raw("steps.extract.status", scope));
        Assert.Equal("2", Raw("steps.extract.output.lines.length", scope));
        Assert.Equal("2", Raw("steps.extract.attempts", scope));
        Assert.Equal("\"failed\"", Raw("steps.post.status", scope));
        Assert.Equal("null", Raw("steps.post.output", scope));
        Assert.Equal("3", Raw("steps.post.attempts", scope));
        Assert.Equal("true", Raw("steps.never === undefined", scope));
    }

    [Fact]
    public void Steps_ShowTheLatestVisitOutput()
    {
        var state = new TestJobs()
            .Succeeded("loop", """{"i": 1}""")
            .Succeeded("loop", """{"i": 2}""", visit: 2)
            .Build();
        Assert.Equal("2", Raw("steps.loop.output.i", new ExpressionScope { State = state }));
    }

    [Fact]
    public void ItemAndIndex_AreVisibleInsideForeach()
    {
        var scope = new ExpressionScope { Item = TestJobs.Json("""{"sku": "A-1"}"""), Index = 4 };
        Assert.Equal("\"A-1#4\"", Raw("item.sku + '#' + index", scope));
    }

    [Fact]
    public void ItemAndIndex_AreUndefinedOutsideForeach()
        => Assert.Equal("true", Raw("item === undefined && index === undefined", new ExpressionScope()));

    [Fact]
    public void Bindings_AreVisibleByName()
    {
        var scope = new ExpressionScope().With("tool", TestJobs.Json("""{"name": "web.search", "effect": "read"}""")).With("args", TestJobs.Json("""{"lines": [1, 2]}"""));
        Assert.Equal("true", Raw("tool.name.startsWith('web.') && args.lines.length == 2 && agent === undefined", scope));
    }

    [Theory]
    [InlineData("System")]
    [InlineData("System.IO.File.ReadAllText('/etc/passwd')")]
    [InlineData("importNamespace('System.IO')")]
    [InlineData("clrHelper")]
    [InlineData("require('fs')")]
    [InlineData("eval('1 + 1')")]
    [InlineData("Function('return 1')()")]
    [InlineData("new Function('return this')()")]
    [InlineData("(() => 1).constructor('return this')()")]
    [InlineData("setTimeout(() => 1, 0)")]
    public void Evaluate_HostAccess_Fails(string expression)
        => Fails(expression);

    [Fact]
    public void Evaluate_InfiniteLoop_FailsWithAClearMessage()
    {
        var e = Fails("(() => { while (true) {} })()");
        Assert.Contains("statements", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_LongRunningLoop_FailsOnTheTimeLimit()
    {
        var evaluator = new ExpressionEvaluator(Options.Create(new ExpressionOptions { Timeout = TimeSpan.FromMilliseconds(50), MaxStatements = int.MaxValue }));
        var e = Assert.Throws<ExpressionEvaluationException>(() => evaluator.Evaluate(CompiledExpression.Compile("(() => { while (true) {} })()"), new ExpressionScope()));
        Assert.Contains("longer than", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_CatastrophicRegex_FailsOnTheTimeLimit()
    {
        var evaluator = new ExpressionEvaluator(Options.Create(new ExpressionOptions { Timeout = TimeSpan.FromMilliseconds(100) }));
        var e = Assert.Throws<ExpressionEvaluationException>(() => evaluator.Evaluate(
            CompiledExpression.Compile("/^(a+)+$/.test('a'.repeat(40) + 'b')"), new ExpressionScope()));
        Assert.Contains("regular expression ran longer than 100ms", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_OneHugeAllocation_FailsOnTheMemoryLimit()
    {
        var e = Fails("new Array(2 ** 22).fill('abcdefgh').map(s => s + s).length");
        Assert.Contains("allocated more than", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_HugeArray_Fails()
        => Fails("new Array(2 ** 30).fill(0).length");

    [Fact]
    public void NewEvaluator_PreparingItsEngine_DoesNotCountAgainstTheExpressionLimits()
    {
        // Preparing an engine runs more than 50 statements (and may be slow on a cold process); only the expression is limited.
        var evaluator = new ExpressionEvaluator(Options.Create(new ExpressionOptions { MaxStatements = 50 }));
        Assert.Equal("3", evaluator.Evaluate(CompiledExpression.Compile("1 + 2"), new ExpressionScope()).GetRawText());
    }

    [Fact]
    public void Evaluate_UnboundedRecursion_FailsWithAClearMessage()
    {
        var e = Fails("(function f(n) { return f(n + 1) + 1; })(0)");
        Assert.Contains("recursed", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_MemoryHog_FailsOnTheMemoryLimit()
    {
        var evaluator = new ExpressionEvaluator(Options.Create(new ExpressionOptions { MemoryLimitBytes = 1024 * 1024, MaxStatements = int.MaxValue, Timeout = TimeSpan.FromSeconds(10) }));
        var e = Assert.Throws<ExpressionEvaluationException>(() => evaluator.Evaluate(
            CompiledExpression.Compile("(() => { const a = []; for (let i = 0; i < 100000; i++) { a.push('x'.repeat(100) + i); } return a.length; })()"),
            new ExpressionScope()));
        Assert.Contains("allocated more than", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_StatementBudget_IsPerEvaluation()
    {
        // The default statement budget, and a time limit a loaded machine cannot hit: only the budget is under test.
        var evaluator = new ExpressionEvaluator(Options.Create(new ExpressionOptions { Timeout = TimeSpan.FromSeconds(10) }));
        var busy = CompiledExpression.Compile("(() => { let s = 0; for (let i = 0; i < 2000; i++) { s += i; } return s; })()");
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(1999000, evaluator.EvaluateNumber(busy, new ExpressionScope()));
        }
    }

    [Theory]
    [InlineData("globalThis.leak = 1", "typeof globalThis.leak === 'undefined'")]
    [InlineData("leak2 = 1", "typeof leak2 === 'undefined'")]
    [InlineData("Object.prototype.polluted = 1", "({}).polluted === undefined")]
    [InlineData("Array.prototype.map = function () { return 'pwned'; }", "[1].map(x => x)[0] === 1")]
    [InlineData("Array.prototype.extra = 1", "[].extra === undefined")]
    [InlineData("String.prototype.trim = () => 'pwned'", "' a '.trim() === 'a'")]
    [InlineData("JSON.stringify = () => 'pwned'", "JSON.stringify(1) === '1'")]
    [InlineData("Math.max = () => 99", "Math.max(1, 2) === 2")]
    [InlineData("Object.keys = () => []", "Object.keys({ a: 1 }).length === 1")]
    [InlineData("TypeError.prototype.leak = 1", "new TypeError('x').leak === undefined")]
    [InlineData("Symbol.leak = 1", "Symbol.leak === undefined")]
    [InlineData("Reflect.leak = 1", "Reflect.leak === undefined")]
    [InlineData("Object.getPrototypeOf([][Symbol.iterator]()).next = () => ({ done: true })", "[...[1, 2]].length === 2")]
    [InlineData("Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]())).leak = 1", "[][Symbol.iterator]().leak === undefined")]
    [InlineData("Object.getPrototypeOf(function* () {}).leak = 1", "Object.getPrototypeOf(function* () {}).leak === undefined")]
    [InlineData("Object.getPrototypeOf(Int8Array.prototype).leak = 1", "new Int8Array(1).leak === undefined")]
    [InlineData("Promise.prototype.then = () => 'pwned'", "typeof Promise.resolve(1).then(x => x) === 'object'")]
    public void Evaluate_GlobalsCannotBeModifiedAcrossEvaluations(string attack, string probe)
    {
        try
        {
            _evaluator.Evaluate(CompiledExpression.Compile($"(() => {{ {attack}; return 1; }})()"), new ExpressionScope());
        }
        catch (ExpressionEvaluationException)
        {
            // Refusing the write is the expected outcome; what matters is that nothing leaks into the next evaluation.
        }

        Assert.Equal("true", Raw(probe));
    }

    [Fact]
    public void Evaluate_LastRegExpMatch_IsNotVisibleToTheNextEvaluation()
    {
        Assert.Equal("true", Raw("/(t\\w+)-(\\w+)/.test(input.secret)", Input("""{"secret": "tenant-a"}""")));

        Assert.Equal("true", Raw("[RegExp.$1, RegExp.$2, RegExp.lastMatch, RegExp.input, RegExp['$_'], RegExp.leftContext].every(v => v === undefined || v === '')"));
    }

    [Fact]
    public void Evaluate_QueuedPromiseJobs_RunWithinTheirOwnEvaluation()
    {
        var e = Fails("(Promise.resolve().then(() => { while (true) {} }), 1)");
        Assert.Contains("statements", e.Message, StringComparison.Ordinal);

        Assert.Equal("2", Raw("1 + 1"));
    }

    [Fact]
    public void Evaluate_AsyncFunctionsCannotWriteGlobalsLater()
    {
        Raw("(async () => { await null; globalThis.late = 1; })() && 1");
        Assert.Equal("true", Raw("typeof globalThis.late === 'undefined'"));
    }

    [Fact]
    public void Evaluate_AfterAFailure_TheNextEvaluationStartsClean()
    {
        Fails("(Promise.resolve().then(() => { while (true) {} }), null.x)");
        Fails("(function f() { return f(); })()");
        Assert.Equal("3", Raw("(() => { let s = 0; for (let i = 0; i < 3; i++) { s += 1; } return s; })()"));
    }

    [Theory]
    [InlineData("input.x = 2")]
    [InlineData("input.added = 2")]
    [InlineData("delete input.x")]
    [InlineData("input.list.push(4)")]
    [InlineData("input.list[0] = 9")]
    [InlineData("input.list.length = 0")]
    [InlineData("input.nested.inner.v = 1")]
    [InlineData("input.objects[0].k = 1")]
    [InlineData("Object.defineProperty(input, 'y', { value: 1 })")]
    [InlineData("Object.setPrototypeOf(input, { injected: 1 })")]
    [InlineData("steps.a.status = 'failed'")]
    [InlineData("steps.a.output.v = 5")]
    [InlineData("steps.added = {}")]
    [InlineData("artifacts.finding = {}")]
    [InlineData("artifacts.finding.v = 5")]
    [InlineData("job.id = 'other'")]
    [InlineData("job.constraints.no_web = false")]
    [InlineData("item.sku = 'B'")]
    public void Evaluate_TheContextIsReadOnly(string assignment)
    {
        var scope = new ExpressionScope
        {
            State = new TestJobs().Succeeded("a", """{"v": 1}""").Artifact("finding", """{"v": 1}""").Build(),
            Input = TestJobs.Json("""{"x": 1, "list": [1, 2, 3], "nested": {"inner": {"v": 0}}, "objects": [{"k": 0}]}"""),
            Constraints = TestJobs.Json("""{"no_web": true}"""),
            Item = TestJobs.Json("""{"sku": "A"}"""),
        };
        Fails($"(() => {{ {assignment}; return 1; }})()", scope);
    }

    [Fact]
    public void Evaluate_CopiesOfContextValues_CanBeChangedLocally()
    {
        var scope = Input("""{"list": [3, 1, 2], "o": {"a": 1}}""");
        Assert.Equal("[1,2,3,4]", Raw("(() => { const l = [...input.list]; l.push(4); return l.sort(); })()", scope));
        Assert.Equal("""{"a":2}""", Raw("(() => { const o = { ...input.o }; o.a = 2; return o; })()", scope));
        Assert.Equal("[3,1,2]", Raw("input.list", scope));
        Assert.Equal("[1,2,3]", Raw("input.list.slice().sort()", scope));
        Assert.Equal("[6,2,4]", Raw("input.list.map(x => x * 2)", scope));
    }

    [Fact]
    public void Evaluate_RuntimeError_NamesTheExpressionAndItsLocation()
    {
        var expression = CompiledExpression.Compile("input.missing.field", "wf.yaml:12:9 steps[2].next[0].when");
        var e = Assert.Throws<ExpressionEvaluationException>(() => _evaluator.Evaluate(expression, Input("{}")));
        Assert.Contains("wf.yaml:12:9 steps[2].next[0].when", e.Message, StringComparison.Ordinal);
        Assert.Contains("input.missing.field", e.Message, StringComparison.Ordinal);
        Assert.Same(expression, e.Expression);
    }

    [Theory]
    [InlineData("0", false)]
    [InlineData("''", false)]
    [InlineData("null", false)]
    [InlineData("undefined", false)]
    [InlineData("'no'", true)]
    [InlineData("[]", true)]
    [InlineData("input.list.length > 2", true)]
    [InlineData("input.list.includes(9)", false)]
    public void EvaluateBoolean_UsesJavaScriptTruthiness(string expression, bool expected)
        => Assert.Equal(expected, _evaluator.EvaluateBoolean(CompiledExpression.Compile(expression), Input("""{"list": [1, 2, 3]}""")));

    [Fact]
    public void EvaluateNumber_ReturnsNumbersAndRejectsOtherValues()
    {
        var scope = new ExpressionScope().With("bid", TestJobs.Json("""{"cost": 0.5, "latency_ms": 100, "confidence": 0.9}"""));
        Assert.Equal(0.6, _evaluator.EvaluateNumber(CompiledExpression.Compile("bid.cost + 0.01 * bid.latency_ms - bid.confidence"), scope), 9);
        Assert.Throws<ExpressionEvaluationException>(() => _evaluator.EvaluateNumber(CompiledExpression.Compile("'1'"), scope));
        Assert.Throws<ExpressionEvaluationException>(() => _evaluator.EvaluateNumber(CompiledExpression.Compile("1 / 0"), scope));
    }

    [Theory]
    [InlineData("'text'", "text")]
    [InlineData("3", "3")]
    [InlineData("2.5", "2.5")]
    [InlineData("true", "true")]
    [InlineData("null", "")]
    [InlineData("undefined", "")]
    [InlineData("[1, 'a']", "[1,\"a\"]")]
    [InlineData("({ a: { b: 1 } })", "{\"a\":{\"b\":1}}")]
    [InlineData("input.o", "{\"k\":[1,2]}")]
    public void EvaluateText_GivesTheInterpolatedText(string expression, string expected)
        => Assert.Equal(expected, _evaluator.EvaluateText(CompiledExpression.Compile(expression), Input("""{"o": {"k": [1, 2]}}""")));

    [Fact]
    public void Evaluate_IsThreadSafe()
    {
        var expression = CompiledExpression.Compile("input.n * 2 + index");
        var results = new long[200];
        Parallel.For(0, results.Length, i =>
        {
            var scope = new ExpressionScope { Input = TestJobs.Json($$"""{"n": {{i}}}"""), Index = 1 };
            results[i] = _evaluator.Evaluate(expression, scope).GetInt64();
        });
        Assert.Equal(Enumerable.Range(0, results.Length).Select(i => (2L * i) + 1), results);
    }
}
