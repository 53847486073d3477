using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Ordo.Expressions;

namespace Ordo.Benchmarks;

/// <summary>Evaluating a simple route or template expression in the sandbox (pooled Jint engine, compiled once).</summary>
[MemoryDiagnoser]
public class ExpressionEvaluatorBenchmarks
{
    private readonly ExpressionEvaluator _evaluator = new();
    private readonly CompiledExpression _expression = CompiledExpression.Compile("input.i + 1");
    private readonly ExpressionScope _scope = new() { Input = JsonSerializer.SerializeToElement(new { i = 41 }) };

    [GlobalSetup]
    public void Setup()
    {
        if (_evaluator.Evaluate(_expression, _scope).GetInt32() != 42) throw new InvalidOperationException("input.i + 1 did not give 42");
    }

    [Benchmark]
    public JsonElement EvaluateInputPlusOne() => _evaluator.Evaluate(_expression, _scope);
}
