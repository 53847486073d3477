namespace Ordo.Graphs;

/// <summary>
/// A layered top-to-bottom layout of a workflow graph (after Sugiyama): loops are set aside as back edges, nodes go to
/// layers by longest path, edges spanning several layers pass through placeholder points, a few barycentre sweeps order
/// each layer to reduce crossings, and layers are centred. Back edges are drawn up a lane on the right.
/// </summary>
internal sealed class SvgLayout
{
    public const double LayerGap = 72;
    public const double NodeGap = 36;
    public const double Margin = 16;
    public const double DummyWidth = 12;
    public const double LaneGap = 14;
    /// <summary>The band below a layer kept for the labels of the edges that leave it.</summary>
    public const double LabelZone = 28;

    /// <summary>A placed node (a graph node, or a placeholder of a long edge when <see cref="Node"/> is null).</summary>
    public sealed class Box
    {
        public GraphNode? Node { get; init; }
        public IReadOnlyList<string> Lines { get; init; } = [];
        public double Width { get; init; }
        public double Height { get; init; }
        public int Layer { get; set; }
        public double Order { get; set; }
        public double X { get; set; }
        public double Y { get; set; }
        public double CenterX => X + Width / 2;
        public double CenterY => Y + Height / 2;
        public double Bottom => Y + Height;
        public double Right => X + Width;
    }

    /// <summary>An edge with its route: the points of its line, where its label goes.</summary>
    public sealed record Route(GraphEdge Edge, IReadOnlyList<(double X, double Y)> Points, (double X, double Y)? LabelAt, string LabelAnchor);

    public required Dictionary<string, Box> Boxes { get; init; }
    public required List<Route> Routes { get; init; }
    public double Width { get; init; }
    public double Height { get; init; }

    public static SvgLayout Compute(WorkflowGraph graph, Func<GraphNode, IReadOnlyList<string>> linesOf, Func<string, double> textWidth)
    {
        var boxes = new Dictionary<string, Box>(StringComparer.Ordinal);
        foreach (var n in graph.Nodes)
        {
            var lines = linesOf(n);
            var boxWidth = Math.Clamp(lines.Max(textWidth) + 20, n.IsStep ? 110 : 64, 360);
            var boxHeight = n.IsStep ? 12 + lines.Count * 16 : 20 + (lines.Count - 1) * 16 + 8;
            boxes[n.Id] = new Box { Node = n, Lines = lines, Width = boxWidth, Height = boxHeight };
        }

        var forward = graph.Edges.Where(e => !e.IsBackEdge && !e.IsSelfLoop).ToList();
        Layer(graph, boxes, forward);

        // Long edges pass through a placeholder in each layer between their ends.
        var chains = new Dictionary<GraphEdge, List<Box>>();
        var layers = new List<List<Box>>();
        void Put(Box b)
        {
            while (layers.Count <= b.Layer) layers.Add([]);
            b.Order = layers[b.Layer].Count;
            layers[b.Layer].Add(b);
        }

        foreach (var n in graph.Nodes) Put(boxes[n.Id]);
        var links = new List<(Box From, Box To)>();
        foreach (var e in forward)
        {
            var chain = new List<Box> { boxes[e.From] };
            for (var l = boxes[e.From].Layer + 1; l < boxes[e.To].Layer; l++)
            {
                var dummy = new Box { Width = DummyWidth, Height = 1, Layer = l };
                Put(dummy);
                chain.Add(dummy);
            }

            chain.Add(boxes[e.To]);
            chains[e] = chain;
            for (var i = 0; i + 1 < chain.Count; i++) links.Add((chain[i], chain[i + 1]));
        }

        Order(layers, links);
        var (height, bottoms) = Place(layers);
        var width = layers.Count == 0 ? 0 : layers.Max(l => l.Count == 0 ? 0 : l[^1].Right) + Margin;

        var routes = new List<Route>();
        // Edges leave a node's bottom and reach a node's top at points spread along it, in the order of their other ends.
        var outs = chains.GroupBy(c => c.Value[0]).ToDictionary(g => g.Key, g => g.OrderBy(c => c.Value[1].CenterX).Select(c => c.Key).ToList());
        var ins = chains.GroupBy(c => c.Value[^1]).ToDictionary(g => g.Key, g => g.OrderBy(c => c.Value[^2].CenterX).Select(c => c.Key).ToList());
        double Spread(Box b, List<GraphEdge> list, GraphEdge e) => b.X + b.Width * (list.IndexOf(e) + 1) / (list.Count + 1);
        // Orthogonal routes: down from the node, across in the gap below its layer, down through the slot a placeholder
        // keeps free in each layer it crosses, and down into the target's top. Labels sit just below the node they leave;
        // below them, each crossing of a gap gets a height of its own, so no two edges run along the same line.
        var plans = new List<(GraphEdge Edge, (double X, double Y) Start, (double X, double Y) End, List<double> Columns, List<Box> Chain)>();
        var jogs = new Dictionary<int, List<(int Plan, int Segment, double X)>>();
        foreach (var e in forward)
        {
            var chain = chains[e];
            var start = (X: Spread(chain[0], outs[chain[0]], e), Y: chain[0].Bottom);
            var end = (X: Spread(chain[^1], ins[chain[^1]], e), Y: chain[^1].Y);
            var columns = new List<double> { start.X };
            columns.AddRange(chain.Skip(1).SkipLast(1).Select(d => d.CenterX));
            columns.Add(end.X);
            for (var i = 0; i + 1 < columns.Count; i++)
            {
                if (Math.Abs(columns[i] - columns[i + 1]) < 0.5) continue;
                var layer = chain[i].Layer;
                if (!jogs.TryGetValue(layer, out var list)) jogs[layer] = list = [];
                list.Add((plans.Count, i, Math.Min(columns[i], columns[i + 1])));
            }

            plans.Add((e, start, end, columns, chain));
        }

        var jogY = new Dictionary<(int Plan, int Segment), double>();
        foreach (var (layer, list) in jogs)
        {
            var top = bottoms[layer] + LabelZone;
            var room = LayerGap - LabelZone - 6;
            var ordered = list.OrderBy(j => j.X).ToList();
            for (var k = 0; k < ordered.Count; k++) jogY[(ordered[k].Plan, ordered[k].Segment)] = top + room * (k + 1) / (ordered.Count + 1);
        }

        for (var p = 0; p < plans.Count; p++)
        {
            var (e, start, end, columns, chain) = plans[p];
            var points = new List<(double X, double Y)> { start };
            for (var i = 0; i + 1 < columns.Count; i++)
            {
                if (!jogY.TryGetValue((p, i), out var y)) continue;
                points.Add((columns[i], y));
                points.Add((columns[i + 1], y));
            }

            points.Add(end);
            var nth = outs[chain[0]].IndexOf(e);
            routes.Add(new Route(e, points, e.Label is null ? null : (start.X + 4, start.Y + 12 + 12 * (nth % 2)), "start"));
        }

        // Back edges go up a lane of their own on the right; self loops (escalation) curl on the node's right side.
        var lane = width;
        foreach (var e in graph.Edges.Where(e => e.IsBackEdge && !e.IsSelfLoop))
        {
            var (from, to) = (boxes[e.From], boxes[e.To]);
            lane += LaneGap;
            var points = new List<(double X, double Y)> { (from.Right, from.CenterY + 4), (lane, from.CenterY + 4), (lane, to.CenterY - 4), (to.Right, to.CenterY - 4) };
            routes.Add(new Route(e, points, e.Label is null ? null : (lane + 4, (from.CenterY + to.CenterY) / 2), "start"));
        }

        foreach (var e in graph.Edges.Where(e => e.IsSelfLoop))
        {
            var b = boxes[e.From];
            var points = new List<(double X, double Y)> { (b.Right, b.CenterY - 6), (b.Right + 22, b.CenterY - 6), (b.Right + 22, b.CenterY + 6), (b.Right, b.CenterY + 6) };
            routes.Add(new Route(e, points, e.Label is null ? null : (b.Right + 26, b.CenterY + 4), "start"));
        }

        var labelRoom = routes.Where(r => r.LabelAnchor == "start" && r.LabelAt is not null).Select(r => r.LabelAt!.Value.X + textWidth(GraphText.Clip(r.Edge.Label!, SvgRenderer.EdgeLabelMax))).DefaultIfEmpty(0).Max();
        return new SvgLayout
        {
            Boxes = boxes,
            Routes = routes,
            Width = Math.Ceiling(Math.Max(Math.Max(lane, width), labelRoom) + Margin),
            Height = Math.Ceiling(height + Margin),
        };
    }

    /// <summary>Longest-path layering over the forward edges (a topological order; nodes no edge reaches start at layer 0).</summary>
    private static void Layer(WorkflowGraph graph, Dictionary<string, Box> boxes, List<GraphEdge> forward)
    {
        var indegree = graph.Nodes.ToDictionary(n => n.Id, _ => 0, StringComparer.Ordinal);
        foreach (var e in forward) indegree[e.To]++;
        var outOf = forward.GroupBy(e => e.From, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var ready = new Queue<string>(graph.Nodes.Where(n => indegree[n.Id] == 0).Select(n => n.Id));
        while (ready.Count > 0)
        {
            var id = ready.Dequeue();
            foreach (var e in outOf.GetValueOrDefault(id) ?? [])
            {
                boxes[e.To].Layer = Math.Max(boxes[e.To].Layer, boxes[id].Layer + 1);
                if (--indegree[e.To] == 0) ready.Enqueue(e.To);
            }
        }

        // The end and the failure of the job sit on the last layer, below every step.
        var last = boxes.Values.Where(b => b.Node!.IsStep).Select(b => b.Layer).DefaultIfEmpty(0).Max() + 1;
        foreach (var id in new[] { WorkflowGraph.EndId, WorkflowGraph.FailId })
        {
            if (boxes.TryGetValue(id, out var b)) b.Layer = Math.Max(b.Layer, last);
        }
    }

    /// <summary>Orders each layer by the barycentre of its neighbours, sweeping down then up, a few times.</summary>
    private static void Order(List<List<Box>> layers, List<(Box From, Box To)> links)
    {
        var up = links.GroupBy(l => l.To).ToDictionary(g => g.Key, g => g.Select(l => l.From).ToList());
        var down = links.GroupBy(l => l.From).ToDictionary(g => g.Key, g => g.Select(l => l.To).ToList());
        for (var sweep = 0; sweep < 6; sweep++)
        {
            var downward = sweep % 2 == 0;
            var range = downward ? Enumerable.Range(1, Math.Max(0, layers.Count - 1)) : Enumerable.Range(0, Math.Max(0, layers.Count - 1)).Reverse();
            foreach (var l in range)
            {
                var neighbours = downward ? up : down;
                var keyed = layers[l].Select((b, i) => (b, Key: neighbours.TryGetValue(b, out var ns) && ns.Count > 0 ? ns.Average(n => n.Order) : b.Order, i)).ToList();
                layers[l] = [.. keyed.OrderBy(k => k.Key).ThenBy(k => k.i).Select(k => k.b)];
                for (var i = 0; i < layers[l].Count; i++) layers[l][i].Order = i;
            }
        }
    }

    /// <summary>Places layers top to bottom, each centred on the widest; returns the bottom of the last layer and of each layer.</summary>
    private static (double Height, List<double> Bottoms) Place(List<List<Box>> layers)
    {
        var widths = layers.Select(l => l.Sum(b => b.Width) + NodeGap * Math.Max(0, l.Count - 1)).ToList();
        var widest = widths.DefaultIfEmpty(0).Max();
        var y = Margin;
        var bottoms = new List<double>();
        for (var i = 0; i < layers.Count; i++)
        {
            var x = Margin + (widest - widths[i]) / 2;
            var tallest = layers[i].Select(b => b.Height).DefaultIfEmpty(0).Max();
            foreach (var b in layers[i])
            {
                b.X = x;
                b.Y = y + (tallest - b.Height) / 2;
                x += b.Width + NodeGap;
            }

            bottoms.Add(y + tallest);
            y += tallest + LayerGap;
        }

        return (y - LayerGap, bottoms);
    }
}
