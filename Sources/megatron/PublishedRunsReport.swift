import Planner

/// `megatron plan --published-runs`: the planner's prediction of every published run
/// (`PublishedRuns.all`) beside the published figures, as the README's Markdown table or, with
/// `--json`, an array of rows for a script.
enum PublishedRunsReport {
    /// One row of `--published-runs --json`.
    struct Row: Encodable {
        var name: String
        var source: String
        var layout: String
        var gpus: Int
        var published_tflops_per_gpu: Double
        var predicted_tflops_per_gpu: Double
        var published_iteration_time_s: Double
        var iteration_time_published: Bool
        var predicted_iteration_time_s: Double
    }

    static func json() throws -> String {
        let rows = try PublishedRuns.all.map { run in
            let estimate = try run.predict()
            return Row(name: run.name, source: run.source, layout: layoutText(run), gpus: run.layout.devices,
                       published_tflops_per_gpu: run.tflopsPerGPU,
                       predicted_tflops_per_gpu: run.tflops(atSeconds: estimate.iterationSeconds),
                       published_iteration_time_s: run.iterationSeconds, iteration_time_published: run.iterationPublished,
                       predicted_iteration_time_s: estimate.iterationSeconds)
        }
        return try PlanReport.encode(rows)
    }

    /// The layout, software flags and cluster of a run, as the table shows them.
    static func layoutText(_ run: PublishedRun) -> String {
        let layout = run.layout
        let software = layout.software.flags.isEmpty ? "" : " " + layout.software.flags.joined(separator: " ")
        return "TP \(layout.tensorParallel) PP \(layout.pipelineParallel)"
            + (layout.virtualStages > 1 ? " v\(layout.virtualStages)" : "")
            + " DP \(layout.dataParallel), b \(layout.microBatchSize), B \(layout.globalBatchSize), "
            + "\(layout.recompute.rawValue)" + (layout.sequenceParallel ? " + SP" : "")
            + (layout.distributedOptimizer ? ", dist-opt" : "")
            + ", \(layout.precision.rawValue)\(software), \(run.cluster.name)"
    }

    static func table() throws -> String {
        var lines = [
            "| run | layout | GPUs | published TFLOP/s | predicted | error | published s/iter | predicted | error |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        var worst = (tflops: 0.0, seconds: 0.0)
        for run in PublishedRuns.all {
            let estimate = try run.predict()
            let tflops = run.tflops(atSeconds: estimate.iterationSeconds)
            let (tflopsError, secondsError) = run.errors(of: estimate)
            // The signed error of largest magnitude: which way the worst row misses.
            worst = (abs(tflopsError) > abs(worst.tflops) ? tflopsError : worst.tflops,
                     abs(secondsError) > abs(worst.seconds) ? secondsError : worst.seconds)
            let shape = layoutText(run)
            lines.append("| \(run.name) | \(shape) | \(run.layout.devices) | \(fixed(run.tflopsPerGPU, 1)) | \(fixed(tflops, 1)) | "
                + "\(percent(tflopsError)) | \(fixed(run.iterationSeconds, 2))\(run.iterationPublished ? "" : "*") | "
                + "\(fixed(estimate.iterationSeconds, 2)) | \(percent(secondsError)) |")
        }
        lines.append("")
        lines.append("\(PublishedRuns.all.count) runs; worst error \(percent(worst.tflops)) in TFLOP/s per GPU, "
            + "\(percent(worst.seconds)) in time per iteration. * implied by the published TFLOP/s.")
        return lines.joined(separator: "\n")
    }

    static func percent(_ x: Double) -> String { (x >= 0 ? "+" : "") + fixed(x * 100, 1) + "%" }
}
