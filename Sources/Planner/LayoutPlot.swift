/// An SVG picture of the best layouts of a search (`megatron plan --search --plot FILE.svg`): for
/// each layout a stacked bar of its time per iteration (compute, bubble, TP, PP, DP, optimizer)
/// and one of its memory per device (weights, gradients, optimizer state, activations) against the
/// device's memory. Hand-written SVG: no script, no external resources. Each bar carries its
/// figures as `data-` attributes, so a script can read back exactly what was drawn.
public enum LayoutPlot {
    /// The parts of the time bar and of the memory bar, in drawing order, with their colours.
    static let timeParts = [("compute", "#4e79a7"), ("bubble", "#f28e2b"), ("TP", "#e15759"), ("PP", "#76b7b2"),
                            ("DP", "#59a14f"), ("optimizer", "#edc948")]
    static let memoryParts = [("weights", "#9c755f"), ("gradients", "#bab0ac"), ("optimizer state", "#ff9da7"),
                              ("activations", "#b07aa1")]

    static func times(_ e: PlanEstimate) -> [Double] {
        [e.computeSeconds, e.bubbleSeconds, e.tensorParallelSeconds, e.pipelineParallelSeconds, e.dataParallelSeconds,
         e.optimizerSeconds]
    }

    static func memory(_ e: PlanEstimate) -> [Double] {
        [e.weightBytesPerDevice, e.gradientBytesPerDevice, e.optimizerBytesPerDevice, e.activationBytesPerDevice]
    }

    /// The SVG of `candidates` (fastest first), titled `title`, memory against `deviceMemory` bytes.
    public static func svg(_ candidates: [LayoutSearch.Candidate], title: String, deviceMemory: Double) -> String {
        let rowHeight = 34.0, left = 330.0, barWidth = 300.0, gap = 40.0
        let top = 70.0, height = top + rowHeight * Double(max(candidates.count, 1)) + 70
        let width = left + 2 * barWidth + gap + 30
        let longest = candidates.map(\.estimate.iterationSeconds).max() ?? 1
        let memoryScale = max(deviceMemory, candidates.map(\.estimate.memoryPerDeviceBytes).max() ?? 1)
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="10" y="20" font-size="14" font-weight="bold">\(escape(title))</text>
        <text x="\(left)" y="50">time per iteration (s)</text>
        <text x="\(left + barWidth + gap)" y="50">memory per device (GiB, line: \(LayoutSearch.format(deviceMemory / gib)) GiB)</text>

        """
        for (row, candidate) in candidates.enumerated() {
            let e = candidate.estimate, y = top + Double(row) * rowHeight
            svg += "<g class=\"layout\" data-rank=\"\(row + 1)\" data-iteration-s=\"\(e.iterationSeconds)\" "
                + "data-memory-bytes=\"\(e.memoryPerDeviceBytes)\">\n"
            svg += "<text x=\"10\" y=\"\(y + 16)\">\(row + 1). \(escape(describe(candidate.layout)))</text>\n"
            svg += bars(times(e), parts: timeParts, scale: barWidth / longest, x: left, y: y, unit: "s")
            svg += bars(memory(e), parts: memoryParts, scale: barWidth / memoryScale, x: left + barWidth + gap, y: y, unit: "bytes")
            svg += "<text x=\"\(left + barWidth * e.iterationSeconds / longest + 4)\" y=\"\(y + 16)\">\(LayoutSearch.format(e.iterationSeconds))</text>\n"
            svg += "</g>\n"
        }
        let line = left + barWidth + gap + barWidth * deviceMemory / memoryScale
        svg += "<line x1=\"\(line)\" y1=\"\(top - 6)\" x2=\"\(line)\" y2=\"\(height - 60)\" stroke=\"black\" stroke-dasharray=\"4 3\"/>\n"
        for (legendRow, parts) in [timeParts, memoryParts].enumerated() {
            for (column, (name, colour)) in parts.enumerated() {
                let x = 10 + Double(column) * 120, y = height - 50 + Double(legendRow) * 20
                svg += "<rect x=\"\(x)\" y=\"\(y)\" width=\"12\" height=\"12\" fill=\"\(colour)\"/>"
                    + "<text x=\"\(x + 16)\" y=\"\(y + 10)\">\(name)</text>\n"
            }
        }
        return svg + "</svg>\n"
    }

    /// One stacked bar: a rectangle per non-zero part, each with its value.
    static func bars(_ values: [Double], parts: [(String, String)], scale: Double, x: Double, y: Double, unit: String) -> String {
        var out = "", cursor = x
        for (value, part) in zip(values, parts) where value > 0 {
            let w = value * scale
            out += "<rect class=\"part\" data-part=\"\(part.0)\" data-\(unit)=\"\(value)\" x=\"\(cursor)\" y=\"\(y + 4)\" "
                + "width=\"\(w)\" height=\"\(22)\" fill=\"\(part.1)\"><title>\(part.0): \(unit == "s" ? LayoutSearch.format(value) + " s" : LayoutSearch.format(value / gib) + " GiB")</title></rect>\n"
            cursor += w
        }
        return out
    }

    static func describe(_ layout: TrainingLayout) -> String {
        "TP \(layout.tensorParallel) PP \(layout.pipelineParallel)\(layout.virtualStages > 1 ? " v\(layout.virtualStages)" : "") "
            + "DP \(layout.dataParallel) b \(layout.microBatchSize) \(layout.recompute.rawValue)"
            + (layout.sequenceParallel ? " SP" : "") + (layout.distributedOptimizer ? " ZeRO" : "")
    }

    static let gib = 1024.0 * 1024 * 1024

    static func escape(_ text: String) -> String {
        text.reduce(into: "") { out, character in
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(character)
            }
        }
    }
}
