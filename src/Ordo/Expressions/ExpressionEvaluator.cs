using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Jint;
using JsEngine = Jint.Engine;
using Jint.Native;
using Jint.Runtime;
using Microsoft.Extensions.Options;

namespace Ordo.Expressions;

/// <summary>Limits of the expression sandbox.</summary>
public sealed class ExpressionOptions
{
    /// <summary>Wall-clock time one evaluation may take. Default: 250 ms.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Statements one evaluation may execute. Default: 10,000.</summary>
    public int MaxStatements { get; set; } = 10_000;

    /// <summary>Bytes one evaluation may allocate. Default: 16 MB.</summary>
    public long MemoryLimitBytes { get; set; } = 16L * 1024 * 1024;

    /// <summary>Call depth. Default: 64.</summary>
    public int MaxRecursion { get; set; } = 64;
}

/// <summary>
/// Evaluates <see cref="CompiledExpression"/>s in a sandbox: no access to the host (no CLR, no <c>eval</c>),
/// frozen globals, and bounded time, statements, memory and recursion.
/// </summary>
/// <remarks>Thread-safe: engines are pooled, one per concurrent evaluation.</remarks>
public sealed class ExpressionEvaluator
{
    private readonly ExpressionOptions _options;
    private readonly ConcurrentBag<PooledEngine> _pool = [];

    /// <summary>Creates an evaluator with default limits.</summary>
    public ExpressionEvaluator() : this(Microsoft.Extensions.Options.Options.Create(new ExpressionOptions())) { }

    /// <summary>Creates an evaluator.</summary>
    public ExpressionEvaluator(IOptions<ExpressionOptions> options) => _options = options?.Value ?? new ExpressionOptions();

    /// <summary>Evaluates an expression to a JSON value (<c>undefined</c> becomes null).</summary>
    /// <exception cref="ExpressionEvaluationException">The expression threw, exceeded a limit or returned something that is not data.</exception>
    public JsonElement Evaluate(CompiledExpression expression, ExpressionScope scope)
        => Run(expression, scope, static v => JsBridge.ToJson(v));

    /// <summary>Evaluates an expression for its truth (JavaScript truthiness).</summary>
    /// <exception cref="ExpressionEvaluationException">The expression threw or exceeded a limit.</exception>
    public bool EvaluateBoolean(CompiledExpression expression, ExpressionScope scope)
        => Run(expression, scope, static v => TypeConverter.ToBoolean(v));

    /// <summary>Evaluates an expression to a number.</summary>
    /// <exception cref="ExpressionEvaluationException">The result is not a finite number, or the expression failed.</exception>
    public double EvaluateNumber(CompiledExpression expression, ExpressionScope scope)
        => Run(expression, scope, v => v.IsNumber() && double.IsFinite(v.AsNumber())
            ? v.AsNumber()
            : throw new ExpressionEvaluationException(expression, $"expected a number, got {JsBridge.ToText(v)}"));

    /// <summary>Evaluates an expression to the text it takes in an interpolated string.</summary>
    public string EvaluateText(CompiledExpression expression, ExpressionScope scope)
        => Run(expression, scope, static v => JsBridge.ToText(v));

    private T Run<T>(CompiledExpression expression, ExpressionScope scope, Func<JsValue, T> convert)
    {
        ArgumentNullException.ThrowIfNull(expression);
        ArgumentNullException.ThrowIfNull(scope);
        var pooled = _pool.TryTake(out var p) ? p : new PooledEngine(CreateEngine());
        try
        {
            var fn = pooled.Functions.GetValue(expression, e => new StrongBox<JsValue>(pooled.Engine.Evaluate(e.Prepared))).Value!;
            var args = Arguments(pooled.Engine, scope);
            var result = pooled.Engine.Invoke(fn, args);
            return convert(result);
        }
        catch (ExpressionEvaluationException)
        {
            throw;
        }
        catch (JavaScriptException e)
        {
            throw new ExpressionEvaluationException(expression, e.Message, e);
        }
        catch (StatementsCountOverflowException e)
        {
            throw new ExpressionEvaluationException(expression, $"it ran more than {_options.MaxStatements} statements", e);
        }
        catch (TimeoutException e)
        {
            throw new ExpressionEvaluationException(expression, $"it ran longer than {Durations.Format(_options.Timeout)}", e);
        }
        catch (MemoryLimitExceededException e)
        {
            throw new ExpressionEvaluationException(expression, $"it allocated more than {_options.MemoryLimitBytes / (1024 * 1024)} MB", e);
        }
        catch (RecursionDepthOverflowException e)
        {
            throw new ExpressionEvaluationException(expression, $"it recursed deeper than {_options.MaxRecursion} calls", e);
        }
        catch (InvalidOperationException e)
        {
            throw new ExpressionEvaluationException(expression, e.Message, e);
        }
        finally
        {
            _pool.Add(pooled);
        }
    }

    private static JsValue[] Arguments(JsEngine engine, ExpressionScope scope)
    {
        var state = scope.State;
        var input = scope.Input ?? state?.Input;
        var job = new JsBridge.LazyObject(engine, () => ["id", "tenant", "workflow", "version", "constraints", "attempt"], key => key switch
        {
            "id" => state is null ? JsValue.Null : new JsString(state.JobId.Value),
            "tenant" => state is null ? JsValue.Null : new JsString(state.Tenant),
            "workflow" => state is null ? JsValue.Null : new JsString(state.Workflow),
            "version" => state is null ? JsValue.Null : JsNumber.Create(state.Version),
            "constraints" => scope.Constraints is { } c ? JsBridge.ToJs(engine, c) : new JsObject(engine),
            "attempt" => JsNumber.Create(scope.Attempt),
            _ => null,
        });

        var names = ExpressionScope.Names;
        var args = new JsValue[names.Count];
        args[0] = JsBridge.ToJs(engine, input);
        args[1] = JsBridge.Artifacts(engine, state, scope.IncludeQuarantined);
        args[2] = job;
        args[3] = JsBridge.Steps(engine, state);
        args[4] = JsBridge.ToJs(engine, scope.Item);
        args[5] = scope.Index is { } i ? JsNumber.Create(i) : JsValue.Undefined;
        for (var k = 6; k < names.Count; k++)
        {
            args[k] = scope.Bindings is not null && scope.Bindings.TryGetValue(names[k], out var b) ? JsBridge.ToJs(engine, b) : JsValue.Undefined;
        }

        return args;
    }

    private JsEngine CreateEngine()
    {
        var engine = new JsEngine(o => o
            .LimitMemory(_options.MemoryLimitBytes)
            .TimeoutInterval(_options.Timeout)
            .MaxStatements(_options.MaxStatements)
            .LimitRecursion(_options.MaxRecursion)
            .Strict()
            .DisableStringCompilation());

        // Nothing an expression does may outlive it: freeze the globals and the built-in prototypes.
        engine.Execute("""
            for (const c of [Object, Array, String, Number, Boolean, Function, Date, RegExp, Math, JSON, Error, Promise, Map, Set])
            { Object.freeze(c); if (c.prototype) Object.freeze(c.prototype); }
            Object.freeze(globalThis);
            """);
        return engine;
    }

    private sealed class PooledEngine(JsEngine engine)
    {
        public JsEngine Engine { get; } = engine;

        public ConditionalWeakTable<CompiledExpression, StrongBox<JsValue>> Functions { get; } = [];
    }
}
