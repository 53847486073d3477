namespace Ordo.Graphs;

/// <summary>The drawings of a workflow graph.</summary>
public enum GraphFormat
{
    /// <summary>A Mermaid flowchart (text).</summary>
    Mermaid,
    /// <summary>Graphviz DOT (text).</summary>
    Dot,
    /// <summary>A self-contained SVG image, laid out by Ordo: no script, no external reference.</summary>
    Svg,
}
