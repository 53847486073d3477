using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using Jint;
using JsEngine = Jint.Engine;
using Jint.Native;
using Jint.Native.Object;
using Jint.Runtime.Descriptors;
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

    /// <summary>
    /// The longest string one built-in call may produce (<c>repeat</c>, <c>padStart</c>, <c>padEnd</c>, <c>join</c>,
    /// <c>JSON.stringify</c>): such a call allocates before any statement limit can notice. Default: 4,194,304 characters.
    /// </summary>
    public int MaxStringLength { get; set; } = 4 * 1024 * 1024;

    /// <summary>The largest value an expression may return, as JSON. Default: 4 MB.</summary>
    public int MaxResultBytes { get; set; } = 4 * 1024 * 1024;
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
        => Run(expression, scope, v => JsBridge.ToJson(v, _options.MaxResultBytes));

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
        => Run(expression, scope, v => JsBridge.ToText(v, _options.MaxResultBytes));

    private T Run<T>(CompiledExpression expression, ExpressionScope scope, Func<JsValue, T> convert)
    {
        ArgumentNullException.ThrowIfNull(expression);
        ArgumentNullException.ThrowIfNull(scope);
        var pooled = _pool.TryTake(out var p) ? p : CreateEngine();
        var reusable = false;
        try
        {
            var fn = pooled.Functions.GetValue(expression, e => new StrongBox<JsValue>(pooled.Engine.Evaluate(e.Prepared))).Value!;
            var args = Arguments(pooled.Engine, scope);
            pooled.Limits.Begin();
            var result = pooled.Engine.Invoke(fn, args);

            // Jobs the expression queued (promise callbacks, async functions) run now, under its limits, and never
            // at the start of a later evaluation of another job.
            pooled.Engine.Advanced.ProcessTasks();
            pooled.Limits.CheckMemoryAfter();
            var value = convert(result);
            reusable = true;
            return value;
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
        catch (RegexMatchTimeoutException e)
        {
            throw new ExpressionEvaluationException(expression, $"a regular expression ran longer than {Durations.Format(_options.Timeout)}", e);
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
            // An engine whose evaluation failed may still hold queued jobs or a half-unwound call stack: it is dropped.
            if (reusable)
            {
                _pool.Add(pooled);
            }
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
            "constraints" => JsBridge.ToJs(engine, scope.Constraints ?? JsonElementFactory.EmptyObject),
            "attempt" => JsNumber.Create(scope.Attempt),
            _ => null,
        });

        var names = ExpressionScope.Names;
        var args = new JsValue[names.Count];
        args[0] = JsBridge.ToJs(engine, input);
        args[1] = JsBridge.Artifacts(engine, state, scope.IncludeQuarantined);
        args[2] = job;
        args[3] = JsBridge.Steps(engine, state, scope.StepScope);
        var item = scope.Item is null && scope.Index is null && scope.StepScope is not null ? state?.ItemOf(scope.StepScope) : null;
        args[4] = JsBridge.ToJs(engine, scope.Item ?? item?.Item);
        args[5] = (scope.Index ?? item?.Index) is { } i ? JsNumber.Create(i) : JsValue.Undefined;
        for (var k = 6; k < names.Count; k++)
        {
            args[k] = scope.Bindings is not null && scope.Bindings.TryGetValue(names[k], out var b) ? JsBridge.ToJs(engine, b) : JsValue.Undefined;
        }

        return args;
    }

    private PooledEngine CreateEngine()
    {
        var limits = new SandboxLimits(_options);
        var engine = new JsEngine(o =>
        {
            o.Constraint(limits)
                .LimitRecursion(_options.MaxRecursion)
                .Strict()
                .DisableStringCompilation();

            // A regular expression runs inside one statement: without its own timeout, catastrophic backtracking
            // would run for Jint's default of 10 s whatever the evaluation's time limit.
            o.Constraints.RegexTimeout = _options.Timeout > TimeSpan.Zero && _options.Timeout.TotalDays <= 365 ? _options.Timeout : Regex.InfiniteMatchTimeout;
            o.Constraints.MaxArraySize = (uint)Math.Clamp(_options.MemoryLimitBytes / 8, 1024, uint.MaxValue);
        });

        // Built-ins that build one big string in a single call allocate before any statement limit can notice: each is
        // wrapped to refuse a result longer than MaxStringLength up front. join and JSON.stringify measure first, in C#
        // (a shared sub-array stringified 2^30 times is tiny in memory and enormous as text).
        var max = _options.MaxStringLength;
        engine.SetValue("__ordoMeasureJson", new Jint.Runtime.Interop.ClrFunction(engine, "measureJson", (_, args) =>
        {
            JsBridge.Measure(args.Length > 0 ? args[0] : JsValue.Undefined, max);
            return JsValue.Undefined;
        }));
        engine.SetValue("__ordoMeasureJoin", new Jint.Runtime.Interop.ClrFunction(engine, "measureJoin", (_, args) =>
        {
            JsBridge.MeasureJoin(args[0], args.Length > 1 ? args[1] : JsValue.Undefined, max);
            return JsValue.Undefined;
        }));
        engine.Execute($$"""
            (() => {
              const MAX = {{_options.MaxStringLength}};
              const tooLong = () => { throw new RangeError('the string would be longer than ' + MAX + ' characters (the sandbox limit)'); };
              const define = (o, name, f) => Object.defineProperty(o, name, { value: f, writable: true, configurable: true, enumerable: false });
              const S = String.prototype, A = Array.prototype;
              const repeat = S.repeat, padStart = S.padStart, padEnd = S.padEnd, join = A.join, stringify = JSON.stringify;
              define(S, 'repeat', function (count) {
                const n = Math.floor(Number(count));
                if (n > 0 && String(this).length * n > MAX) tooLong();
                return repeat.call(this, count);
              });
              define(S, 'padStart', function (length, fill) { if (Number(length) > MAX) tooLong(); return padStart.call(this, length, fill); });
              define(S, 'padEnd', function (length, fill) { if (Number(length) > MAX) tooLong(); return padEnd.call(this, length, fill); });
              const measureJson = globalThis.__ordoMeasureJson, measureJoin = globalThis.__ordoMeasureJoin;
              delete globalThis.__ordoMeasureJson;
              delete globalThis.__ordoMeasureJoin;
              define(A, 'join', function (separator) { measureJoin(this, separator); return join.call(this, separator); });
              define(JSON, 'stringify', function (value, replacer, space) { measureJson(value); return stringify.call(JSON, value, replacer, space); });
            })();
            """);

        // The legacy RegExp statics (RegExp.$1, lastMatch, …) would show the last match of one evaluation to the next.
        engine.Execute("""
            for (const k of Object.getOwnPropertyNames(RegExp)) {
              const d = Object.getOwnPropertyDescriptor(RegExp, k);
              if (d.get && d.configurable) delete RegExp[k];
            }
            """);

        // Nothing an expression does may outlive it: freeze every object reachable from the globals, and the
        // intrinsics that only syntax reaches (iterator, generator and async function prototypes), so that no
        // evaluation can change what a later one (of another job or tenant) sees.
        var hidden = engine.Evaluate("""
            (() => {
              const safe = f => { try { return f(); } catch (e) { return undefined; } };
              return [
                safe(() => Object.getPrototypeOf(function* () {})),
                safe(() => Object.getPrototypeOf(async function () {})),
                safe(() => Object.getPrototypeOf(async function* () {})),
                safe(() => Object.getPrototypeOf([][Symbol.iterator]())),
                safe(() => Object.getPrototypeOf(new Map()[Symbol.iterator]())),
                safe(() => Object.getPrototypeOf(new Set()[Symbol.iterator]())),
                safe(() => Object.getPrototypeOf(''[Symbol.iterator]())),
                safe(() => Object.getPrototypeOf(/x/[Symbol.matchAll](''))),
                safe(() => Object.getPrototypeOf([].values().map(x => x))),
                safe(() => Object.getPrototypeOf(Iterator.from({ next() { return { done: true }; } }))),
              ];
            })()
            """);
        DeepFreeze(engine, [engine.Global, hidden]);
        limits.Armed = true;
        return new PooledEngine(engine, limits);
    }

    private static void DeepFreeze(JsEngine engine, IEnumerable<JsValue> roots)
    {
        var freeze = engine.Intrinsics.Object.Get("freeze");
        var seen = new HashSet<ObjectInstance>(ReferenceEqualityComparer.Instance);
        var pending = new Stack<JsValue>(roots);
        while (pending.Count > 0)
        {
            if (pending.Pop() is not ObjectInstance o || !seen.Add(o))
            {
                continue;
            }

            freeze.Call(o);
            if (o.Prototype is { } prototype)
            {
                pending.Push(prototype);
            }

            foreach (var key in o.GetOwnPropertyKeys())
            {
                var d = o.GetOwnProperty(key);
                if (d == PropertyDescriptor.Undefined)
                {
                    continue;
                }

                if (d.IsAccessorDescriptor())
                {
                    if (d.Get is { } get) pending.Push(get);
                    if (d.Set is { } set) pending.Push(set);
                }
                else if (d.Value is { } value)
                {
                    pending.Push(value);
                }
            }
        }
    }

    private sealed class PooledEngine(JsEngine engine, SandboxLimits limits)
    {
        public JsEngine Engine { get; } = engine;

        public SandboxLimits Limits { get; } = limits;

        public ConditionalWeakTable<CompiledExpression, StrongBox<JsValue>> Functions { get; } = [];
    }
}
