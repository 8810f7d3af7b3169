import FileSupport
#if canImport(Glibc)
import Glibc
#endif

/// The plots of the dashboard: which metrics-file keys each one draws, for every run shown.
struct DashboardMetric: Sendable {
    let id: String
    let title: String
    /// The training records' key (drawn as a line); nil when only validations are drawn.
    let key: String?
    /// The validation records' key (drawn as dots).
    let validationKey: String?
    /// Whether the validations come first (then they are the plot's `data-points`/`data-last`).
    var validationFirst = false
    /// Applied to the training key's values (perplexity from the loss).
    var transform: (@Sendable (Double) -> Double)? = nil
    /// The prediction's key in the header's `prediction` object, drawn as a reference line.
    var predictionKey: String? = nil
    /// Axis labels.
    var format: @Sendable (Double) -> String = LinePlot.short

    static let all: [DashboardMetric] = [
        DashboardMetric(id: "loss", title: "lm loss (line: training, dots: validation)", key: "lm_loss",
                        validationKey: "validation_loss"),
        DashboardMetric(id: "perplexity", title: "perplexity (dots: validation, line: training)",
                        key: "lm_loss", validationKey: "validation_ppl", validationFirst: true,
                        transform: { exp(min($0, 20)) }),  // capped as the logged validation_ppl is (Megatron-LM's exp(min(20, loss)))
        DashboardMetric(id: "learning-rate", title: "learning rate", key: "lr", validationKey: nil),
        DashboardMetric(id: "batch-size", title: "global batch size (ramp-up)", key: "global_batch_size", validationKey: nil),
        DashboardMetric(id: "grad-norm", title: "grad norm (before clipping)", key: "grad_norm", validationKey: nil),
        DashboardMetric(id: "loss-scale", title: "loss scale", key: "loss_scale", validationKey: nil),
        DashboardMetric(id: "skipped", title: "skipped iterations per log interval", key: "skipped_iterations",
                        validationKey: nil),
        DashboardMetric(id: "time", title: "ms per iteration (dashed: planner)", key: "ms_per_iter", validationKey: nil,
                        predictionKey: "ms_per_iter"),
        DashboardMetric(id: "tokens", title: "tokens/s", key: "tokens_per_s", validationKey: nil),
        DashboardMetric(id: "tflops", title: "model TFLOP/s", key: "tflops", validationKey: nil),
        DashboardMetric(id: "mfu", title: "MFU % (of the measured GEMM peak)", key: "mfu", validationKey: nil),
        DashboardMetric(id: "memory", title: "peak resident memory (dashed: planner)", key: "peak_memory_bytes",
                        validationKey: nil, predictionKey: "memory_bytes", format: DashboardMetric.bytes),
    ]

    /// The plot of this metric over `runs` (a colour per run).
    func plot(_ runs: [RunMetrics]) -> LinePlot {
        var series = [LinePlot.Series]()
        var references = [LinePlot.Reference]()
        for (index, run) in runs.enumerated() {
            var line: LinePlot.Series?
            if let key {
                let points = run.points(key).map { (x: Double($0.iteration), y: transform?($0.value) ?? $0.value) }
                line = LinePlot.Series(label: run.name, key: key, points: points, colour: index)
            }
            var dots: LinePlot.Series?
            if let validationKey {
                let points = run.points(validationKey, validation: true).map { (x: Double($0.iteration), y: $0.value) }
                dots = LinePlot.Series(label: run.name + " (validation)", key: validationKey, points: points, colour: index,
                                       dots: true)
            }
            series += (validationFirst ? [dots, line] : [line, dots]).compactMap { $0 }
            if let predictionKey, case let .number(value)? = run.header?["prediction"]?[predictionKey] {
                references.append(LinePlot.Reference(label: runs.count > 1 ? "\(run.name): planner" : "planner", y: value))
            }
        }
        var plot = LinePlot(id: id, title: title, series: series, references: references)
        plot.format = format
        return plot
    }

    /// Bytes as KiB/MiB/GiB.
    static func bytes(_ value: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var scaled = value, unit = 0
        while abs(scaled) >= 1024 && unit < units.count - 1 {
            scaled /= 1024
            unit += 1
        }
        return LinePlot.short((scaled * 10).rounded() / 10) + " " + units[unit]
    }
}
