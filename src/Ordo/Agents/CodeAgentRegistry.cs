using System.Reflection;

namespace Ordo.Agents;

/// <summary>The code agents and code tools a process can run, by type name (and, for tools, by tool name).</summary>
/// <remarks>Thread-safe.</remarks>
public sealed class CodeRegistry
{
    private readonly Dictionary<string, Func<IServiceProvider?, ICodeAgent>> _agents = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Func<IServiceProvider?, Tools.ICodeTool>> _tools = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly HashSet<string> _plugins = new(StringComparer.Ordinal);

    /// <summary>Registers a code agent under a type name.</summary>
    public void AddAgent(string typeName, Func<IServiceProvider?, ICodeAgent> factory)
    {
        ArgumentException.ThrowIfNullOrEmpty(typeName);
        lock (_gate) _agents[typeName] = factory;
    }

    /// <summary>Registers a code tool under a type or tool name.</summary>
    public void AddTool(string name, Func<IServiceProvider?, Tools.ICodeTool> factory)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        lock (_gate) _tools[name] = factory;
    }

    /// <summary>Whether a code agent is registered.</summary>
    public bool HasAgent(string typeName)
    {
        lock (_gate) return _agents.ContainsKey(typeName);
    }

    /// <summary>Whether a code tool is registered.</summary>
    public bool HasTool(string name)
    {
        lock (_gate) return _tools.ContainsKey(name);
    }

    /// <summary>Creates a code agent.</summary>
    /// <exception cref="OrdoException">No agent is registered under that name.</exception>
    public ICodeAgent CreateAgent(string typeName, IServiceProvider? services)
    {
        Func<IServiceProvider?, ICodeAgent>? f;
        lock (_gate) _agents.TryGetValue(typeName, out f);
        return f is null ? throw new OrdoException($"code agent type '{typeName}' is not registered in this process (register it with AddCodeAgent or load its plugin)") : f(services);
    }

    /// <summary>Creates a code tool.</summary>
    /// <exception cref="OrdoException">No tool is registered under that name.</exception>
    public Tools.ICodeTool CreateTool(string name, IServiceProvider? services)
    {
        Func<IServiceProvider?, Tools.ICodeTool>? f;
        lock (_gate) _tools.TryGetValue(name, out f);
        return f is null ? throw new OrdoException($"code tool '{name}' is not registered in this process (register it with AddCodeTool or load its plugin)") : f(services);
    }

    /// <summary>Registers every public, non-abstract <see cref="ICodeAgent"/> and <see cref="Tools.ICodeTool"/> of an assembly by full type name.</summary>
    public int AddAssembly(Assembly assembly)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        var count = 0;
        foreach (var type in assembly.GetExportedTypes().Where(t => t is { IsAbstract: false, IsInterface: false } && t.GetConstructor(Type.EmptyTypes) is not null))
        {
            if (typeof(ICodeAgent).IsAssignableFrom(type))
            {
                AddAgent(type.FullName!, _ => (ICodeAgent)Activator.CreateInstance(type)!);
                count++;
            }

            if (typeof(Tools.ICodeTool).IsAssignableFrom(type))
            {
                AddTool(type.FullName!, _ => (Tools.ICodeTool)Activator.CreateInstance(type)!);
                count++;
            }
        }

        return count;
    }

    /// <summary>Loads plugin assemblies and registers their agents and tools.</summary>
    /// <exception cref="OrdoException">A plugin file is missing or cannot be loaded.</exception>
    public void LoadPlugins(IEnumerable<string> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        foreach (var path in paths)
        {
            var full = Path.GetFullPath(path);
            lock (_gate)
            {
                if (_plugins.Contains(full)) continue;
            }

            if (!File.Exists(path))
            {
                throw new OrdoException($"plugin '{path}' does not exist");
            }

            try
            {
                AddAssembly(System.Runtime.Loader.AssemblyLoadContext.Default.LoadFromAssemblyPath(full));
                lock (_gate) _plugins.Add(full);
            }
            catch (Exception e) when (e is BadImageFormatException or FileLoadException or ReflectionTypeLoadException)
            {
                throw new OrdoException($"plugin '{path}' cannot be loaded: {e.Message}", e);
            }
        }
    }
}
