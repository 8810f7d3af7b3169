import Accelerator
import ArgumentParser
import Kernels
import Measurement
import Models
import Planner
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `megatron bench`: benchmarks of training steps and of the communication backends.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks: training steps (default), collectives, pipeline schedules, GEMMs and the attention core.",
        subcommands: [StepBenchCommand.self, CollectivesBenchCommand.self, PipelineBenchCommand.self, GEMMBenchCommand.self,
                      AttentionBenchCommand.self],
        defaultSubcommand: StepBenchCommand.self)
}

/// `megatron bench [step]`: times GPT training steps (forward + backward + AdamW) on random tokens.
struct StepBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "step",
        abstract: "Time training steps of a GPT configuration and report tokens/s, memory and MFU.",
        discussion: """
        MFU divides Megatron's model FLOPs per step (Narayanan et al. 2021, without recomputation),
          F = 72 B s l h^2 (1 + s / (6 h) + V / (12 l h)),
        by the step time and by the sgemm peak this command measures first (best of several
        4096x768x3072 products on all BLAS threads). Peak memory is the process's peak resident set;
        saved activations are the bytes the model keeps between forward and backward (the layers'
        and, separately, the logits), counted by the code that allocates them.
        With --recompute-granularity the backward recomputes activations (MFU still counts the
        model FLOPs without the recomputation, as Megatron does). With --bf16 the linear layers'
        GEMMs run on bf16 operands and MFU is against the bf16 GEMM peak (same product, measured);
        --fp16 is emulated (fp16-rounded operands, sgemm) and measured against the sgemm peak.
        """)

    @Option(name: .long, help: "Configuration: S, M or 124M.")
    var config: BenchConfiguration = .m

    @Option(name: .long, help: "Timed steps (after the warm-up steps).")
    var steps: Int = 5

    @Option(name: .long, help: "Untimed warm-up steps.")
    var warmup: Int = 1

    @OptionGroup var deviceOptions: DeviceOptions

    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false

    @Flag(name: .long, help: "bf16 GEMMs with fp32 master weights (as train --bf16).")
    var bf16 = false

    @Flag(name: .long, help: "fp16 GEMMs (emulated) with a loss scale of 1024 (as train --fp16).")
    var fp16 = false

    @Option(name: .long, help: "full or selective: recompute activations in the backward (as train).")
    var recomputeGranularity: String?

    @Option(name: .long, help: "uniform or block (with full; default: uniform).")
    var recomputeMethod: String?

    @Option(name: .long, help: "Layers per recomputed group (uniform) or recomputed layers (block; with full; default: 1).")
    var recomputeNumLayers: Int?

    @Option(name: .long, help: "Dropout on the embedding and the attention and MLP outputs (as train).")
    var hiddenDropout: Float = 0

    @Option(name: .long, help: "Dropout on the attention probabilities (as train).")
    var attentionDropout: Float = 0

    /// The recomputation the flags ask for.
    var recomputation: ActivationRecomputation {
        get throws {
            let granularity = try recomputeGranularity.map { text in
                guard let granularity = ActivationRecomputation.Granularity(rawValue: text), granularity != .none else {
                    throw ValidationError("--recompute-granularity must be full or selective, got \(text)")
                }
                return granularity
            }
            let method = try recomputeMethod.map { text in
                guard let method = ActivationRecomputation.Method(rawValue: text) else {
                    throw ValidationError("--recompute-method must be uniform or block, got \(text)")
                }
                return method
            }
            return try ActivationRecomputation(flags: granularity, method: method, numLayers: recomputeNumLayers)
        }
    }

    func validate() throws {
        guard steps > 0 else { throw ValidationError("--steps must be positive, got \(steps)") }
        guard warmup >= 0 else { throw ValidationError("--warmup must not be negative, got \(warmup)") }
        guard !(bf16 && fp16) else { throw ValidationError("give at most one of --bf16 and --fp16") }
        _ = try recomputation
        for (value, flag) in [(hiddenDropout, "--hidden-dropout"), (attentionDropout, "--attention-dropout")]
        where !(value >= 0 && value < 1) {
            throw ValidationError("\(flag) must be in [0, 1), got \(value)")
        }
    }

    func run() throws {
        try deviceOptions.activate(allowsAsynchronous: true)
        let precision: ComputePrecision = bf16 ? .bf16 : fp16 ? .fp16 : .fp32
        let peak = GEMMPeak.measure(precision)
        if precision == .bf16, let note = BF16SpeedNote.measure(bf16Peak: peak) { printError("note: " + note) }
        let recomputation = try recomputation
        let result = try StepBenchmark(shape: config.shape, recomputation: recomputation, precision: precision,
                                       hiddenDropout: hiddenDropout, attentionDropout: attentionDropout)
            .run(warmup: warmup, steps: steps)
        let report = BenchReport(shape: config.shape, result: result, gemmPeakGFLOPs: peak, recomputation: recomputation,
                                 precision: precision)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(report.text)
        }
        if let profile = GPU.active?.profileReport {  // MEGATRON_CUDA_PROFILE=1
            printError("over the \(steps) timed steps: " + profile)
        }
    }
}

/// The benchmark configurations of the core issue (GPT-2 architecture).
enum BenchConfiguration: String, ExpressibleByArgument, CaseIterable {
    case s = "S", m = "M", gpt124M = "124M"

    init?(argument: String) {
        guard let value = Self.allCases.first(where: { $0.rawValue.lowercased() == argument.lowercased() }) else {
            return nil
        }
        self = value
    }

    var shape: BenchShape {
        switch self {
        case .s: BenchShape(name: rawValue, vocab: 8192, seqLength: 256, layers: 4, hidden: 256, heads: 4, microBatch: 8)
        case .m: BenchShape(name: rawValue, vocab: 50304, seqLength: 512, layers: 6, hidden: 384, heads: 6, microBatch: 4)
        case .gpt124M: BenchShape(name: rawValue, vocab: 50304, seqLength: 1024, layers: 12, hidden: 768, heads: 12, microBatch: 4)
        }
    }
}
