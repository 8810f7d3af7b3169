import FileSupport
import Kernels
import Measurement
import Parameters
import Training
#if canImport(Glibc)
import Glibc
#endif

/// Megatron's console log: a line every `--log-interval` iterations with averages over the
/// interval, validation loss and perplexity, a progress bar on a terminal, and `--metrics-file`.
struct TrainingLog {
    let trainer: Trainer
    let peakFLOPs: Double
    let metrics: MetricsFile?
    let tensorBoard: TensorBoardWriter?
    /// Ranks other than the first keep count but print nothing.
    let quiet: Bool
    private var intervalSeconds = 0.0
    private var intervalLoss = 0.0
    private var intervalSentenceOrderLoss = 0.0
    private var intervalIterations = 0
    private var intervalSamples = 0
    private var skipped = 0
    private var nan = 0
    private let terminal = isatty(2) != 0

    init(trainer: Trainer, peakFLOPs: Double, metrics: MetricsFile?, tensorBoard: TensorBoardWriter?, quiet: Bool = false) {
        self.quiet = quiet
        self.trainer = trainer
        self.peakFLOPs = peakFLOPs
        self.metrics = metrics
        self.tensorBoard = tensorBoard
    }

    func start() {
        guard !quiet else { return }
        for warning in trainer.config.warnings { print("WARNING: " + warning) }
        if let warning = trainer.loadWarning { print("WARNING: " + warning) }
        if let note = trainer.loadNote { printLine("> note: " + note) }
        let c = trainer.model.config
        let kind = c.bert.map { "BERT (\($0.residualConnectionPostLayerNorm ? "post" : "pre")-LN\($0.binaryHead ? ", sentence-order head" : ""))" } ?? "GPT"
        printLine("> \(kind): \(trainer.model.layout.totalCount) parameters, \(c.numLayers) layers, hidden \(c.hiddenSize), "
              + "\(c.numAttentionHeads) heads, seq \(trainer.config.seqLength), vocab \(c.vocabSize) (padded \(c.paddedVocabSize))")
        printLine("> training \(trainer.totalSamples) samples from iteration \(trainer.iteration) "
              + "(consumed samples \(trainer.consumedSamples)); \(trainer.config.precision == .bf16 ? "bf16 GEMM" : "sgemm") peak \(fixed(peakFLOPs / 1e9, 1)) GFLOP/s"
              + (trainer.parallel.world.map { $0.size > 1 ? " (rank 0's share of the cores x \($0.size) ranks)" : "" } ?? ""))
        printLine("> memory of rank 0: \(trainer.memory); recompute \(trainer.config.recomputation)")
        switch trainer.config.precision {
        case .fp32: break
        case .bf16: printLine("> precision bf16; " + BF16Matmul.description)
        case .fp16:
            let scale = trainer.lossScaler.map { $0.isDynamic ? "dynamic loss scale from \($0.scale)" : "static loss scale \($0.scale)" } ?? ""
            printLine("> precision fp16 (emulated: fp16-rounded operands, fp32 sgemm); \(scale)")
        }
    }

    mutating func record(_ stats: IterationStats) {
        intervalSeconds += stats.seconds
        intervalIterations += 1
        intervalSamples += stats.globalBatchSize
        if stats.skipped {
            skipped += 1
            if !stats.loss.isFinite { nan += 1 }  // Megatron's "nan iterations": a non-finite loss
        } else {
            intervalLoss += stats.loss
            intervalSentenceOrderLoss += stats.sentenceOrderLoss ?? 0
        }
        if !trainer.reportsThisIteration {
            if terminal && !quiet { progress(stats.iteration) }
            return
        }
        if quiet {
            intervalSeconds = 0; intervalLoss = 0; intervalSentenceOrderLoss = 0; intervalIterations = 0; intervalSamples = 0
            skipped = 0; nan = 0
            return
        }
        let iterations = Double(intervalIterations)
        let msPerIteration = intervalSeconds / iterations * 1000
        let tokensPerSecond = Double(intervalSamples * trainer.config.seqLength) / intervalSeconds
        let flops = trainer.modelFLOPs(batchSize: intervalSamples) / intervalSeconds
        // An interval of skipped iterations only has no loss: nan, never 0.
        let counted = intervalIterations - skipped
        let loss = counted > 0 ? intervalLoss / Double(counted) : .nan
        let sentenceOrderLoss = stats.sentenceOrderLoss == nil ? nil : counted > 0 ? intervalSentenceOrderLoss / Double(counted) : .nan
        let total = trainer.config.trainIters.map(String.init) ?? "?"
        if terminal { writeError("\r\u{1B}[K") }
        printLine(" [\(timestamp())] iteration \(padded(stats.iteration, 8))/\(padded(total, 8)) | consumed samples: \(padded(stats.consumedSamples, 12))"
              + " | elapsed time per iteration (ms): \(fixed(msPerIteration, 1)) | learning rate: \(scientificE(stats.learningRate))"
              + " | global batch size: \(padded(stats.globalBatchSize, 5)) | lm loss: \(scientificE(loss))"
              + (sentenceOrderLoss.map { " | sop loss: \(scientificE($0))" } ?? "")
              + " | loss scale: \(fixed(stats.lossScale, 1)) | grad norm: \(fixed(stats.gradNorm, 3)) | number of skipped iterations: \(padded(skipped, 3))"
              + " | number of nan iterations: \(padded(nan, 3)) | tokens/s: \(fixed(tokensPerSecond, 0))"
              + " | TFLOP/s: \(fixed(flops / 1e12, 4)) | MFU: \(fixed(flops / peakFLOPs * 100, 1))% |")
        let activations = trainer.allocatedActivationBytes
        report("--metrics-file") { try metrics?.write([
            ("iteration", .number(Double(stats.iteration))), ("consumed_samples", .number(Double(stats.consumedSamples))),
            ("lm_loss", .number(loss)), ("lr", .number(stats.learningRate)), ("grad_norm", .number(stats.gradNorm)),
            ("global_batch_size", .number(Double(stats.globalBatchSize))), ("ms_per_iter", .number(msPerIteration)),
            ("tokens_per_s", .number(tokensPerSecond)), ("skipped_iterations", .number(Double(skipped))),
            ("skipped", .bool(stats.skipped)), ("loss_scale", .number(stats.lossScale)),
            ("activation_bytes", .number(Double(activations.saved))), ("scratch_bytes", .number(Double(activations.scratch))),
            ("peak_memory_bytes", .number(Double(ProcessMemory.peakResidentBytes()))),
            ("tflops", .number(flops / 1e12)), ("mfu", .number(flops / peakFLOPs * 100)),
            ("stage_compute_s", .array(stats.stageSeconds.map { .number($0.compute / iterations) })),
            ("stage_wait_s", .array(stats.stageSeconds.map { .number($0.wait / iterations) })),
        ] + (sentenceOrderLoss.map { [("sop_loss", JSONValue.number($0))] } ?? [])) }
        report("--tensorboard-dir") { try tensorBoard?.scalars([("lm loss", loss), ("learning-rate", stats.learningRate),
                              ("batch-size", Double(stats.globalBatchSize)), ("grad-norm", stats.gradNorm), ("loss-scale", stats.lossScale),
                              ("iteration-time", msPerIteration / 1000), ("throughput/tokens-per-second", tokensPerSecond)]
                              + (sentenceOrderLoss.map { [("sop loss", $0)] } ?? []),
                             step: stats.iteration) }
        intervalSeconds = 0
        intervalLoss = 0
        intervalSentenceOrderLoss = 0
        intervalIterations = 0
        intervalSamples = 0
        skipped = 0
        nan = 0
    }

    /// Logs a validation: the lm loss and its perplexity, and BERT's sentence-order loss.
    func validation(loss: Double, sentenceOrderLoss: Double? = nil) {
        guard !quiet else { return }
        let ppl = exp(min(loss, 20))
        printLine(String(repeating: "-", count: 100))
        printLine(" validation loss at iteration \(trainer.iteration) | lm loss value: \(scientificE(loss)) | lm loss PPL: \(scientificE(ppl)) |"
                  + (sentenceOrderLoss.map { " sop loss value: \(scientificE($0)) |" } ?? ""))
        printLine(String(repeating: "-", count: 100))
        report("--tensorboard-dir") {
            try tensorBoard?.scalars([("lm loss validation", loss), ("lm loss validation ppl", ppl)]
                                     + (sentenceOrderLoss.map { [("sop loss validation", $0)] } ?? []), step: trainer.iteration)
        }
        report("--metrics-file") { try metrics?.write([("iteration", .number(Double(trainer.iteration))), ("validation_loss", .number(loss)),
                               ("validation_ppl", .number(ppl))] + (sentenceOrderLoss.map { [("validation_sop_loss", JSONValue.number($0))] } ?? [])) }
    }

    /// A metrics or event write that failed: a warning per failure, and training goes on (the
    /// record is left out of the file; checkpoints are what a run cannot lose).
    private func report(_ flag: String, _ write: () throws -> Void?) {
        do { _ = try write() } catch { writeError("warning: \(flag): \(error) (record skipped, training continues)\n") }
    }

    func note(_ line: String) { if !quiet { printLine("> " + line) } }

    func finish() {
        guard !quiet else { return }
        if terminal { writeError("\r\u{1B}[K") }
        let activations = trainer.allocatedActivationBytes
        printLine("> done: iteration \(trainer.iteration), consumed samples \(trainer.consumedSamples); "
                  + "saved activations of rank 0 \(SystemMemory.describe(Double(activations.saved))) "
                  + "(scratch \(SystemMemory.describe(Double(activations.scratch)))); "
                  + "peak resident memory \(SystemMemory.describe(Double(ProcessMemory.peakResidentBytes())))")
    }

    private func progress(_ iteration: Int) {
        guard let total = trainer.config.trainIters, total > 0 else { return }
        let width = 30, done = width * iteration / total
        writeError("\r[" + String(repeating: "=", count: done) + String(repeating: " ", count: width - done)
                   + "] \(iteration)/\(total)")
    }
}

/// Prints a line and flushes it at once, so that a killed run keeps its log even when standard
/// output is a file or a pipe (block-buffered).
func printLine(_ line: String) {
    print(line)
    fflush(nil)
}

private func padded(_ value: some CustomStringConvertible, _ width: Int) -> String {
    let text = value.description
    return String(repeating: " ", count: max(0, width - text.count)) + text
}

private func timestamp() -> String {
    var now = time(nil)
    var parts = tm()
    localtime_r(&now, &parts)
    var buffer = [UInt8](repeating: 0, count: 32)
    let count = buffer.withUnsafeMutableBufferPointer { raw in
        raw.baseAddress!.withMemoryRebound(to: CChar.self, capacity: raw.count) { strftime($0, raw.count, "%Y-%m-%d %H:%M:%S", &parts) }
    }
    return String(decoding: buffer.prefix(count), as: UTF8.self)
}
