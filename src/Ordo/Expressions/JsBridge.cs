using System.Buffers;
using System.Text.Json;
using Jint;
using JsEngine = Jint.Engine;
using Jint.Native;
using Jint.Native.Object;
using Jint.Runtime;
using Jint.Runtime.Descriptors;
using Ordo.State;

namespace Ordo.Expressions;

/// <summary>Converts between JSON values and JavaScript values; JSON objects are exposed lazily and read-only.</summary>
internal static class JsBridge
{
    public static JsValue ToJs(JsEngine engine, JsonElement? value) => value is { } v ? ToJs(engine, v) : JsValue.Undefined;

    public static JsValue ToJs(JsEngine engine, JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Object => new ReadOnlyJsonObject(engine, value),
        JsonValueKind.Array => ToArray(engine, value),
        JsonValueKind.String => new JsString(value.GetString()!),
        JsonValueKind.Number => JsNumber.Create(value.GetDouble()),
        JsonValueKind.True => JsBoolean.True,
        JsonValueKind.False => JsBoolean.False,
        JsonValueKind.Null => JsValue.Null,
        _ => JsValue.Undefined,
    };

    private static JsArray ToArray(JsEngine engine, JsonElement value)
    {
        // Converted whole on first use: one that could not be held within the sandbox's array limit is refused first.
        var length = value.GetArrayLength();
        if (length > MaxArrayLength)
        {
            throw new InvalidOperationException($"an array of {length} elements is larger than an expression may read (at most {MaxArrayLength})");
        }

        var items = new JsValue[length];
        var i = 0;
        foreach (var e in value.EnumerateArray())
        {
            items[i++] = ToJs(engine, e);
        }

        // Arrays of the context are frozen like its objects: an expression reads the job, it never changes it.
        var array = new JsArray(engine, items);
        engine.Intrinsics.Object.Get("freeze").Call(array);
        return array;
    }

    /// <summary>The longest array of the job's data an expression may read: each element becomes a value in the sandbox.</summary>
    public const int MaxArrayLength = 1_000_000;

    /// <summary>Converts a JavaScript result to JSON; functions and symbols are errors, <c>undefined</c> becomes null.</summary>
    public static JsonElement ToJson(JsValue value, int maxBytes = int.MaxValue)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            Write(writer, value, 0, maxBytes, new HashSet<ObjectInstance>(ReferenceEqualityComparer.Instance));
        }

        return JsonElementFactory.Parse(buffer.WrittenSpan);
    }

    /// <summary>Converts a value to the text it takes inside an interpolated string.</summary>
    public static string ToText(JsValue value, int maxBytes = int.MaxValue)
    {
        if (value.IsString()) return value.AsString();
        if (value.IsNull() || value.IsUndefined()) return "";
        if (value.IsObject() && !value.IsRegExp()) return ToJson(value, maxBytes).GetRawText();
        return TypeConverter.ToString(value);
    }

    /// <summary>
    /// Refuses (ending the evaluation, like any limit) a value whose JSON would be longer than <paramref name="max"/>
    /// characters, after at most that much work; other reasons a value is not JSON are left to the caller.
    /// </summary>
    public static void Measure(JsValue value, int max)
    {
        try
        {
            using var writer = new Utf8JsonWriter(new CountingBuffer());
            Write(writer, value, 0, max, new HashSet<ObjectInstance>(ReferenceEqualityComparer.Instance));
            writer.Flush();
        }
        catch (JsonLimitException e)
        {
            // A limit, like the statement and memory limits: it ends the evaluation (a script cannot catch it).
            throw new InvalidOperationException($"JSON.stringify would produce more than {max} characters ({e.Message})", e);
        }
        catch (Exception e) when (e is InvalidOperationException or JavaScriptException or RecursionDepthOverflowException)
        {
            // Not JSON for another reason (a function, a cycle): JSON.stringify itself says so.
        }
    }

    /// <summary>Refuses (ending the evaluation) an <c>Array.prototype.join</c> whose result would be longer than <paramref name="max"/> characters.</summary>
    public static void MeasureJoin(JsValue array, JsValue separator, int max)
    {
        if (array is not ObjectInstance o) return;
        var sep = separator.IsUndefined() ? 1 : TypeConverter.ToString(separator).Length;
        var length = TypeConverter.ToLength(o.Get("length"));
        long total = 0;
        for (ulong i = 0; i < length; i++)
        {
            var v = o.Get(i);
            total += (v.IsNull() || v.IsUndefined() ? 0 : v.IsString() ? v.AsString().Length : TypeConverter.ToString(v).Length) + (i > 0 ? sep : 0);
            if (total > max)
            {
                throw new InvalidOperationException($"Array.prototype.join would produce more than {max} characters");
            }
        }
    }

    /// <summary>A buffer that throws away what is written to it: measuring needs only the writer's byte count.</summary>
    private sealed class CountingBuffer : IBufferWriter<byte>
    {
        private byte[] _scratch = new byte[4096];

        public void Advance(int count)
        {
        }

        public Memory<byte> GetMemory(int sizeHint = 0) => Scratch(sizeHint);

        public Span<byte> GetSpan(int sizeHint = 0) => Scratch(sizeHint);

        private byte[] Scratch(int sizeHint)
        {
            if (sizeHint > _scratch.Length) _scratch = new byte[sizeHint];
            return _scratch;
        }
    }

    /// <summary>A value too large or too deep to be turned into JSON within the sandbox's limits.</summary>
    private sealed class JsonLimitException(string message) : InvalidOperationException(message);

    /// <summary>The deepest nesting of a value turned into JSON (the JSON reader's own limit is 64).</summary>
    public const int MaxDepth = 60;

    private static void Write(Utf8JsonWriter w, JsValue value, int depth, int maxBytes, HashSet<ObjectInstance> path)
    {
        if (depth > MaxDepth)
        {
            throw new JsonLimitException($"the value is nested more than {MaxDepth} levels deep");
        }

        // Checked as the value is written, so a huge value is refused after at most maxBytes of work, not all of it.
        if (w.BytesCommitted + w.BytesPending > maxBytes)
        {
            throw new JsonLimitException(maxBytes >= 1024 * 1024 ? $"the value is larger than {maxBytes / (1024 * 1024.0):0.#} MB as JSON" : $"the value is larger than {maxBytes} bytes as JSON");
        }

        switch (value)
        {
            case ReadOnlyJsonObject ro:
                ro.Element.WriteTo(w);
                return;
            case JsString:
                w.WriteStringValue(value.AsString());
                return;
            case JsNumber:
                var d = value.AsNumber();
                if (double.IsNaN(d) || double.IsInfinity(d)) w.WriteNullValue();
                else if (d == Math.Floor(d) && Math.Abs(d) < 9e15) w.WriteNumberValue((long)d);
                else w.WriteNumberValue(d);
                return;
            case JsBoolean:
                w.WriteBooleanValue(value.AsBoolean());
                return;
        }

        if (value.IsNull() || value.IsUndefined())
        {
            w.WriteNullValue();
            return;
        }

        if (value.IsArray())
        {
            var arr = value.AsArray();
            Enter(path, arr);
            w.WriteStartArray();
            for (uint i = 0; i < arr.Length; i++)
            {
                Write(w, arr.Get(i), depth + 1, maxBytes, path);
            }

            w.WriteEndArray();
            path.Remove(arr);
            return;
        }

        if (value.IsDate())
        {
            w.WriteStringValue(value.AsDate().ToDateTime().ToString("O", System.Globalization.CultureInfo.InvariantCulture));
            return;
        }

        if (value is ObjectInstance o && value is not Jint.Native.Function.Function)
        {
            Enter(path, o);
            w.WriteStartObject();
            foreach (var key in o.GetOwnPropertyKeys(Types.String))
            {
                var desc = o.GetOwnProperty(key);
                if (desc == PropertyDescriptor.Undefined || !desc.Enumerable) continue;
                var v = o.Get(key);
                if (v.IsUndefined() || v is Jint.Native.Function.Function) continue;
                w.WritePropertyName(key.ToString());
                Write(w, v, depth + 1, maxBytes, path);
            }

            w.WriteEndObject();
            path.Remove(o);
            return;
        }

        throw new InvalidOperationException($"a {value.Type} value cannot be turned into JSON");
    }

    /// <summary>Steps into an object or array; one already on the path from the root is a cycle, which JSON cannot hold.</summary>
    private static void Enter(HashSet<ObjectInstance> path, ObjectInstance value)
    {
        if (!path.Add(value)) throw new InvalidOperationException("the value contains itself (a cycle), which has no JSON form");
    }

    /// <summary>A JSON object seen from JavaScript: properties converted on first access, no writes.</summary>
    internal sealed class ReadOnlyJsonObject : ObjectInstance
    {
        private Dictionary<string, PropertyDescriptor>? _cache;

        public ReadOnlyJsonObject(JsEngine engine, JsonElement element)
            : base(engine)
        {
            Element = element;

            // Not extensible, so that Object.setPrototypeOf and new properties fail too.
            base.PreventExtensions();
        }

        public JsonElement Element { get; }

        public override PropertyDescriptor GetOwnProperty(JsValue property)
        {
            if (!property.IsString())
            {
                return base.GetOwnProperty(property);
            }

            var name = property.AsString();
            _cache ??= new Dictionary<string, PropertyDescriptor>(StringComparer.Ordinal);
            if (_cache.TryGetValue(name, out var d))
            {
                return d;
            }

            d = TryGet(name, out var v)
                ? new PropertyDescriptor(ToJs(Engine, v), writable: false, enumerable: true, configurable: false)
                : PropertyDescriptor.Undefined;
            _cache[name] = d;
            return d;
        }

        /// <summary>
        /// Looks a property up: by a scan for a small object, by an index built once for a large one (reading every key of
        /// an object with 500,000 of them, as <c>Object.keys</c> does, must not scan it 500,000 times).
        /// </summary>
        private bool TryGet(string name, out JsonElement value)
        {
            if (_index is null && Element.GetPropertyCount() > 16)
            {
                _index = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
                foreach (var p in Element.EnumerateObject()) _index[p.Name] = p.Value;
            }

            return _index is not null ? _index.TryGetValue(name, out value) : Element.TryGetProperty(name, out value);
        }

        private Dictionary<string, JsonElement>? _index;

        public override List<JsValue> GetOwnPropertyKeys(Types types = Types.String | Types.Symbol)
            => (types & Types.String) == 0 ? [] : Element.EnumerateObject().Select(p => (JsValue)new JsString(p.Name)).ToList();

        public override bool Set(JsValue property, JsValue value, JsValue receiver) => false;

        public override bool DefineOwnProperty(JsValue property, PropertyDescriptor desc) => false;

        public override bool Delete(JsValue property) => false;
    }

    /// <summary>A read-only object whose properties are computed on first access.</summary>
    internal sealed class LazyObject : ObjectInstance
    {
        private readonly Dictionary<string, PropertyDescriptor> _cache = new(StringComparer.Ordinal);
        private readonly Func<IEnumerable<string>> _keys;
        private readonly Func<string, JsValue?> _lookup;

        public LazyObject(JsEngine engine, Func<IEnumerable<string>> keys, Func<string, JsValue?> lookup)
            : base(engine)
        {
            _keys = keys;
            _lookup = lookup;
            base.PreventExtensions();
        }

        public override PropertyDescriptor GetOwnProperty(JsValue property)
        {
            if (!property.IsString())
            {
                return base.GetOwnProperty(property);
            }

            var name = property.AsString();
            if (_cache.TryGetValue(name, out var d))
            {
                return d;
            }

            var v = _lookup(name);
            d = v is null ? PropertyDescriptor.Undefined : new PropertyDescriptor(v, writable: false, enumerable: true, configurable: false);
            _cache[name] = d;
            return d;
        }

        public override List<JsValue> GetOwnPropertyKeys(Types types = Types.String | Types.Symbol)
            => (types & Types.String) == 0 ? [] : _keys().Select(k => (JsValue)new JsString(k)).ToList();

        public override bool Set(JsValue property, JsValue value, JsValue receiver) => false;

        public override bool DefineOwnProperty(JsValue property, PropertyDescriptor desc) => false;

        public override bool Delete(JsValue property) => false;
    }

    public static ObjectInstance Steps(JsEngine engine, JobState? state, string? scope = null)
    {
        if (state is null)
        {
            return new LazyObject(engine, () => [], _ => null);
        }

        // Inside a branch or an item, a step id means that branch's or item's own visit first (see JobState.StepIn).
        IEnumerable<string> Keys()
        {
            var visible = state.Steps.Keys.Where(k => !k.Contains('/', StringComparison.Ordinal)).ToHashSet(StringComparer.Ordinal);
            for (var s = scope; !string.IsNullOrEmpty(s); s = Events.WorkKeys.ParentScope(s))
            {
                var prefix = s + "/";
                visible.UnionWith(state.Steps.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal) && k.IndexOf('/', prefix.Length) < 0).Select(k => k[prefix.Length..]));
            }

            return visible.Order(StringComparer.Ordinal);
        }

        return new LazyObject(engine, Keys, id =>
        {
            if (state.StepIn(scope, id) is not { } s) return null;
            return new LazyObject(engine, () => ["status", "output", "attempts", "visit"], key => key switch
            {
                "status" => new JsString(s.Status),
                "output" => s.Output is { } o ? ToJs(engine, o) : JsValue.Null,
                "attempts" => JsNumber.Create(s.Attempts),
                "visit" => JsNumber.Create(s.Visit),
                _ => null,
            });
        });
    }

    public static ObjectInstance Artifacts(JsEngine engine, JobState? state, bool includeQuarantined)
    {
        if (state is null)
        {
            return new LazyObject(engine, () => [], _ => null);
        }

        IEnumerable<string> Verified() => state.Artifacts.Values.Where(a => a.Verified is not null).Select(a => a.Name).Order(StringComparer.Ordinal);
        return new LazyObject(engine, includeQuarantined ? () => Verified().Append("quarantined") : Verified, name =>
        {
            if (includeQuarantined && name == "quarantined")
            {
                return new LazyObject(
                    engine,
                    () => state.Artifacts.Values.Where(a => a.Quarantined is not null).Select(a => a.Name).Order(StringComparer.Ordinal),
                    q => state.Artifacts.TryGetValue(q, out var qa) && qa.Quarantined is { } qv ? ToJs(engine, qv.Value) : null);
            }

            return state.Artifacts.TryGetValue(name, out var a) && a.Verified is { } v ? ToJs(engine, v.Value) : null;
        });
    }
}
