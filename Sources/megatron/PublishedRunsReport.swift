import Planner

/// `megatron plan --published-runs`: the planner's prediction of every published run
/// (`PublishedRuns.all`) beside the published figures, as the README's Markdown table.
enum PublishedRunsReport {
    static func table() throws -> String {
        var lines = [
            "| run | layout | GPUs | published TFLOP/s | predicted | error | published s/iter | predicted | error |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        var worst = (tflops: 0.0, seconds: 0.0)
        for run in PublishedRuns.all {
            let estimate = try run.predict()
            let tflops = run.tflops(atSeconds: estimate.iterationSeconds)
            let tflopsError = tflops / run.tflopsPerGPU - 1, secondsError = estimate.iterationSeconds / run.iterationSeconds - 1
            worst = (max(worst.tflops, abs(tflopsError)), max(worst.seconds, abs(secondsError)))
            let layout = run.layout
            let software = layout.software.flags.isEmpty ? "" : " " + layout.software.flags.joined(separator: " ")
            let shape = "TP \(layout.tensorParallel) PP \(layout.pipelineParallel)"
                + (layout.virtualStages > 1 ? " v\(layout.virtualStages)" : "")
                + " DP \(layout.dataParallel), b \(layout.microBatchSize), B \(layout.globalBatchSize), "
                + "\(layout.recompute.rawValue)" + (layout.sequenceParallel ? " + SP" : "")
                + (layout.distributedOptimizer ? ", dist-opt" : "")
                + ", \(layout.precision.rawValue)\(software), \(run.cluster.name)"
            lines.append("| \(run.name) | \(shape) | \(layout.devices) | \(fixed(run.tflopsPerGPU, 1)) | \(fixed(tflops, 1)) | "
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
