#if canImport(Glibc)
import Glibc
#endif

/// A line plot drawn as inline SVG on the server: the page needs no charting library, and what
/// it shows is in the DOM for a test to read. The `<svg>` carries `data-plot`, and its first
/// series' `data-points` (how many points) and `data-last` (the last value, written so that
/// parsing it gives back the same Double); every series' `<g>` carries the same for itself.
public struct LinePlot {
    /// One line: a run's values of one metric.
    public struct Series {
        public var label: String
        public var points: [(x: Double, y: Double)]
        /// Index into the palette (one colour per run).
        public var colour: Int
        /// Drawn as dots (validations) instead of a line.
        public var dots = false
        /// The metric's key in the metrics file (a `data-key` attribute).
        public var key: String

        public init(label: String, key: String, points: [(x: Double, y: Double)], colour: Int, dots: Bool = false) {
            self.label = label
            self.key = key
            self.points = points
            self.colour = colour
            self.dots = dots
        }
    }

    /// A horizontal reference line (the planner's prediction).
    public struct Reference {
        public var label: String
        public var y: Double
        public init(label: String, y: Double) {
            self.label = label
            self.y = y
        }
    }

    public var id: String
    public var title: String
    public var series: [Series]
    public var references: [Reference] = []
    /// Formats the axis labels (the data attributes always keep full precision).
    public var format: (Double) -> String = LinePlot.short

    /// Points drawn per line at most.
    static let maxDrawnPoints = 1500
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"]
    static let (width, height) = (440.0, 230.0)
    static let (left, right, top, bottom) = (70.0, 12.0, 26.0, 30.0)

    public init(id: String, title: String, series: [Series], references: [Reference] = []) {
        self.id = id
        self.title = title
        self.series = series
        self.references = references
    }

    /// The SVG element.
    public var svg: String {
        let first = series.first  // the attributes describe the first series even while it is empty
        let count = first?.points.count ?? 0
        var out = "<svg class=\"plot\" data-plot=\"\(id)\" data-points=\"\(count)\""
            + (first?.points.last.map { " data-last=\"\(Self.exact($0.y))\"" } ?? "")
            + " viewBox=\"0 0 \(Int(Self.width)) \(Int(Self.height))\" role=\"img\" aria-label=\"\(HTML.escape(title))\">"
        out += "<text class=\"title\" x=\"\(Int(Self.left))\" y=\"16\">\(HTML.escape(title))</text>"
        let xs = series.flatMap { $0.points.map(\.x) }
        let ys = series.flatMap { $0.points.map(\.y) } + references.map(\.y)
        guard let xMin = xs.min(), let xMax = xs.max(), let yLow = ys.min(), let yHigh = ys.max() else {
            return out + "<text class=\"empty\" x=\"\(Int(Self.width / 2))\" y=\"\(Int(Self.height / 2))\">no data yet</text></svg>"
        }
        let (yMin, yMax) = Self.padded(yLow, yHigh)
        let plotWidth = Self.width - Self.left - Self.right, plotHeight = Self.height - Self.top - Self.bottom
        let xSpan = xMax > xMin ? xMax - xMin : 1
        func px(_ x: Double) -> String { Self.coordinate(Self.left + (x - xMin) / xSpan * plotWidth) }
        func py(_ y: Double) -> String { Self.coordinate(Self.top + (yMax - y) / (yMax - yMin) * plotHeight) }
        out += "<rect class=\"frame\" x=\"\(Int(Self.left))\" y=\"\(Int(Self.top))\" width=\"\(Int(plotWidth))\" height=\"\(Int(plotHeight))\"/>"
        for tick in Self.ticks(yMin, yMax) {
            out += "<line class=\"grid\" x1=\"\(Int(Self.left))\" x2=\"\(Int(Self.left + plotWidth))\" y1=\"\(py(tick))\" y2=\"\(py(tick))\"/>"
                + "<text class=\"ytick\" x=\"\(Int(Self.left - 4))\" y=\"\(py(tick))\">\(format(tick))</text>"
        }
        for tick in Self.ticks(xMin, xMax > xMin ? xMax : xMin + 1, minimumStep: 1) where tick >= xMin && tick <= max(xMax, xMin) {
            out += "<text class=\"xtick\" x=\"\(px(tick))\" y=\"\(Int(Self.height - Self.bottom + 14))\">\(LinePlot.short(tick))</text>"
        }
        for reference in references {
            out += "<line class=\"reference\" x1=\"\(Int(Self.left))\" x2=\"\(Int(Self.left + plotWidth))\" y1=\"\(py(reference.y))\" y2=\"\(py(reference.y))\">"
                + "<title>\(HTML.escape(reference.label)): \(format(reference.y))</title></line>"
                + "<text class=\"reference-label\" x=\"\(Int(Self.left + plotWidth - 2))\" y=\"\(py(reference.y))\">\(HTML.escape(reference.label))</text>"
        }
        for line in series {
            let colour = Self.palette[line.colour % Self.palette.count]
            out += "<g class=\"series\" data-key=\"\(HTML.escape(line.key))\" data-run=\"\(HTML.escape(line.label))\" data-points=\"\(line.points.count)\""
                + (line.points.last.map { " data-last=\"\(Self.exact($0.y))\"" } ?? "") + ">"
            if line.dots || line.points.count == 1 {
                for point in line.points {
                    out += "<circle cx=\"\(px(point.x))\" cy=\"\(py(point.y))\" r=\"3\" fill=\"\(colour)\"/>"
                }
            } else if !line.points.isEmpty {
                // A long run draws every k-th point (and the last): the page stays small; the
                // data attributes above still count every point.
                let step = max(1, (line.points.count + Self.maxDrawnPoints - 1) / Self.maxDrawnPoints)
                let drawn = Array(stride(from: 0, to: line.points.count - 1, by: step)) + [line.points.count - 1]
                out += "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.6\" points=\""
                    + drawn.map { px(line.points[$0].x) + "," + py(line.points[$0].y) }.joined(separator: " ") + "\"/>"
            }
            out += "</g>"
        }
        return out + "</svg>"
    }

    /// The value's shortest text that reads back as the same Double.
    static func exact(_ value: Double) -> String { "\(value)" }

    /// Axis text: up to four significant digits, k/M/G for large values.
    public static func short(_ value: Double) -> String {
        let magnitude = abs(value)
        if magnitude >= 1e9 { return trimmed(value / 1e9) + "G" }
        if magnitude >= 1e6 { return trimmed(value / 1e6) + "M" }
        if magnitude >= 1e4 { return trimmed(value / 1e3) + "k" }
        if magnitude != 0 && magnitude < 1e-2 {
            let exponent = Int((log10(magnitude)).rounded(.down))
            return trimmed(value / pow(10, Double(exponent))) + "e\(exponent)"
        }
        return trimmed(value)
    }

    private static func trimmed(_ value: Double) -> String {
        var text = String((value * 1000).rounded() / 1000)
        if text.hasSuffix(".0") { text.removeLast(2) }
        return text
    }

    private static func coordinate(_ value: Double) -> String { String((value * 10).rounded() / 10) }

    /// The range with 5% room above and below (a flat line gets a unit of room).
    static func padded(_ low: Double, _ high: Double) -> (Double, Double) {
        if high - low < 1e-12 * max(1, abs(high)) { return (low - max(abs(low) * 0.05, 0.5), high + max(abs(high) * 0.05, 0.5)) }
        let room = (high - low) * 0.05
        return (low - room, high + room)
    }

    /// About five round tick values within [low, high], at least `minimumStep` apart (1 for
    /// iterations).
    static func ticks(_ low: Double, _ high: Double, minimumStep: Double = 0) -> [Double] {
        let raw = max((high - low) / 5, minimumStep)
        guard raw > 0, raw.isFinite else { return [low] }
        let base = pow(10, (log10(raw)).rounded(.down))
        let step = [1.0, 2, 5, 10].map { $0 * base }.first { $0 >= raw } ?? 10 * base
        var ticks = [Double]()
        var tick = (low / step).rounded(.up) * step
        while tick <= high + step * 1e-9 && ticks.count < 12 {
            ticks.append(abs(tick) < step * 1e-9 ? 0 : tick)
            tick += step
        }
        return ticks
    }
}

/// Escaping for text and attribute values.
enum HTML {
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}
