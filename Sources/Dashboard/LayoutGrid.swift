import FileSupport

/// The parallel layout of a run as a grid of its ranks: one block per data-parallel replica, a
/// column per pipeline stage, a cell per tensor-parallel rank naming its global rank and the
/// layers it holds; under each stage, its compute and wait seconds in the last logged interval
/// (the pipeline bubble is where a stage waits). Read from the header's `layout` object:
///
///     {"tensor_parallel": 2, "pipeline_parallel": 2, "data_parallel": 1, "num_layers": 4,
///      "ranks": [{"rank": 0, "tp": 0, "pp": 0, "dp": 0, "layers": "0-1"}, ...]}
///
/// and the latest training record's `stage_compute_s` and `stage_wait_s` arrays.
enum LayoutGrid {
    /// The largest grid drawn: beyond any TP (one node's devices) or PP a run uses.
    static let (maxTensorParallel, maxPipelineParallel) = (64, 128)

    static func html(_ run: RunMetrics) -> String {
        guard let layout = run.header?["layout"], let tp = int(layout["tensor_parallel"]),
              let pp = int(layout["pipeline_parallel"]), let dp = int(layout["data_parallel"]),
              case let .array(ranks)? = layout["ranks"], tp >= 1, pp >= 1, dp >= 1 else {
            return "<p class=\"note\">No layout recorded (a metrics file without a header record).</p>"
        }
        // A header from a corrupt or hand-edited file may claim any size: the count is taken in
        // floating point, and a grid beyond what any run uses is named, not drawn.
        let total = Double(tp) * Double(pp) * Double(dp)
        let count = total < 1e15 ? String(Int(total)) : String(total)
        guard tp <= maxTensorParallel, pp <= maxPipelineParallel else {
            return "<p class=\"note\">TP \(tp) x PP \(pp) x DP \(dp) = \(count) ranks: too many to draw "
                + "(up to TP \(maxTensorParallel) and PP \(maxPipelineParallel) are drawn).</p>"
        }
        var cells = [String: (rank: Int, layers: String)]()
        for entry in ranks {
            guard let rank = int(entry["rank"]), let t = int(entry["tp"]), let p = int(entry["pp"]), let d = int(entry["dp"]) else { continue }
            let layers: String
            if case let .string(text)? = entry["layers"] { layers = text } else { layers = "" }
            cells["\(t),\(p),\(d)"] = (rank, layers)
        }
        let virtual = int(layout["virtual_stages"]).map { $0 > 1 ? ", \($0) model chunks per stage (interleaved)" : "" } ?? ""
        var out = "<div class=\"layout\" data-tp=\"\(tp)\" data-pp=\"\(pp)\" data-dp=\"\(dp)\">"
            + "<p>TP \(tp) x PP \(pp) x DP \(dp) = \(count) rank\(total == 1 ? "" : "s")\(virtual)</p>"
        let last = run.lastIteration.flatMap { run.training[$0] } ?? [:]
        // Replicas are identical but for their rank numbers: at most 16 are drawn, fewer for big grids.
        let drawn = max(1, min(dp, 16, 4096 / (tp * pp)))
        for d in 0..<drawn {
            out += "<table class=\"replica\"><caption>data-parallel replica \(d)</caption><tr>"
            for p in 0..<pp { out += "<th>stage \(p)</th>" }
            out += "</tr>"
            for t in 0..<tp {
                out += "<tr>"
                for p in 0..<pp {
                    let cell = cells["\(t),\(p),\(d)"]
                    out += "<td class=\"rank\" data-rank=\"\(cell.map { String($0.rank) } ?? "")\">"
                        + "rank \(cell.map { String($0.rank) } ?? "?")<br><small>TP \(t) · layers \(HTML.escape(cell?.layers ?? "?"))</small></td>"
                }
                out += "</tr>"
            }
            if d == 0, (0..<pp).contains(where: { last["stage_compute_s.\($0)"] != nil }) {
                out += "<tr>"
                for p in 0..<pp {
                    let compute = last["stage_compute_s.\(p)"], wait = last["stage_wait_s.\(p)"]
                    out += "<td class=\"stage-time\">" + (compute.map { "compute \(LinePlot.short($0)) s" } ?? "")
                        + (wait.map { "<br>wait \(LinePlot.short($0)) s" } ?? "") + "</td>"
                }
                out += "</tr>"
            }
            out += "</table>"
        }
        if dp > drawn { out += "<p class=\"note\">\(dp - drawn) more identical replicas not drawn.</p>" }
        return out + "</div>"
    }

    static func int(_ value: JSONValue?) -> Int? {
        guard case let .number(x)? = value, x == x.rounded(), abs(x) < 1e9 else { return nil }
        return Int(x)
    }
}
