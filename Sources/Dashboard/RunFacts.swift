import FileSupport

/// The planner's prediction next to what the run measured: time per iteration (the median of the
/// logged intervals after the first, which holds the warm-up, at the global batch size the
/// prediction is for: a batch-size ramp-up's smaller batches are left out) and peak resident
/// memory.
enum PredictionTable {
    static func html(_ runs: [RunMetrics]) -> String {
        var out = "<div class=\"panel prediction\"><h2>Planner prediction vs measurement</h2><table>"
            + "<tr><th>run</th><th></th><th>predicted</th><th>measured</th><th>error</th></tr>"
        for run in runs {
            let prediction = run.header?["prediction"]
            let batch = number(prediction?["global_batch_size"])
            let times = run.training.keys.sorted().dropFirst().compactMap { iteration -> Double? in
                let record = run.training[iteration]!
                guard batch == nil || record["global_batch_size"] == batch else { return nil }
                return record["ms_per_iter"].flatMap { $0.isFinite ? $0 : nil }
            }
            let measuredTime = median(times)
            let measuredMemory = run.points("peak_memory_bytes").map(\.value).max()
            let rows: [(String, Double?, Double?, (Double) -> String)] = [
                ("ms per iteration", number(prediction?["ms_per_iter"]), measuredTime, LinePlot.short),
                ("peak memory", number(prediction?["memory_bytes"]), measuredMemory, DashboardMetric.bytes),
            ]
            for (index, (label, predicted, measured, format)) in rows.enumerated() {
                let error = predicted.flatMap { p in measured.map { m in m > 0 ? (p - m) / m * 100 : 0 } }
                out += "<tr data-row=\"\(label)\">" + (index == 0 ? "<td rowspan=\"2\">\(HTML.escape(run.name))</td>" : "")
                    + "<td>\(label)</td><td>\(predicted.map(format) ?? "-")</td><td>\(measured.map(format) ?? "-")</td>"
                    + "<td>\(error.map { ($0 >= 0 ? "+" : "") + LinePlot.short(($0 * 10).rounded() / 10) + "%" } ?? "-")</td></tr>"
            }
            if case let .string(source)? = prediction?["source"] {
                out += "<tr><td></td><td colspan=\"4\" class=\"note\">\(HTML.escape(source))</td></tr>"
            }
        }
        return out + "</table></div>"
    }

    static func number(_ value: JSONValue?) -> Double? {
        if case let .number(x)? = value, x.isFinite { return x }
        return nil
    }

    static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}

/// The run's settings from its header; with several runs, a column each and the settings that
/// differ first, named in a line above the table.
enum SettingsTable {
    static func html(_ runs: [RunMetrics]) -> String {
        let settings = runs.map { run -> [(key: String, value: JSONValue)] in
            if case let .object(members)? = run.header?["settings"] { return members }
            return []
        }
        var keys = [String]()
        for members in settings { for (key, _) in members where !keys.contains(key) { keys.append(key) } }
        guard !keys.isEmpty else { return "<div class=\"panel\"><h2>Settings</h2><p class=\"note\">No settings recorded.</p></div>" }
        func text(_ run: Int, _ key: String) -> String {
            settings[run].last { $0.key == key }.map { describe($0.value) } ?? "(not set)"
        }
        let differing = runs.count > 1 ? keys.filter { key in Set(runs.indices.map { text($0, key) }).count > 1 } : []
        var out = "<div class=\"panel settings\"><h2>Settings</h2>"
        if runs.count > 1 {
            out += differing.isEmpty ? "<p class=\"same\">The runs have the same settings.</p>"
                : "<p class=\"differs-note\" data-differs=\"\(HTML.escape(differing.joined(separator: ",")))\">"
                    + "\(differing.count) setting\(differing.count == 1 ? "" : "s") differ: "
                    + differing.map { "<code>\(HTML.escape($0))</code>" }.joined(separator: ", ") + "</p>"
        }
        out += "<table><tr><th>setting</th>" + runs.map { "<th>\(HTML.escape($0.name))</th>" }.joined() + "</tr>"
        for key in differing + keys.filter({ !differing.contains($0) }) {
            out += "<tr" + (differing.contains(key) ? " class=\"differs\"" : "") + "><td>\(HTML.escape(key))</td>"
                + runs.indices.map { "<td>\(HTML.escape(text($0, key)))</td>" }.joined() + "</tr>"
        }
        return out + "</table></div>"
    }

    static func describe(_ value: JSONValue) -> String {
        if case let .string(text) = value { return text }
        return value.serialized
    }
}
