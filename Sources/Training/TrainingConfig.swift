import Accelerator
import Distributed
import FileSupport
import YAMLSupport
import Models

/// Everything `megatron train` needs, under Megatron's flag names. Built from settings (a flag
/// name without dashes -> value) that come from a config file and the command line, so that both
/// are checked by the same code: an unknown name or a value of the wrong type is an error. Each
/// property is set by one entry of `TrainingFlag.all`, which gives its type, default and help.
public struct TrainingConfig: Sendable, Equatable {
    // Model.
    /// `--model-type`: gpt (Megatron's pretrain_gpt.py) or bert (pretrain_bert.py).
    public var modelType = ModelType.gpt
    /// `--bert-no-binary-head`: BERT without the sentence-order head (and without token types).
    public var bertNoBinaryHead = false
    /// `--apply-residual-connection-post-layernorm` (Megatron's flag): the original post-LN BERT;
    /// off is Megatron-LM's rearranged pre-LN order.
    public var applyResidualConnectionPostLayernorm = false
    /// `--bert-layernorm-order post|pre`: the same choice by name (nil: not given).
    public var bertLayernormOrder: BERTLayerNormOrder?
    /// Whether BERT's residual branches add to the LayerNorm outputs (post-LN), from either flag.
    public var bertPostLayerNorm: Bool { applyResidualConnectionPostLayernorm || bertLayernormOrder == .post }
    /// `--mask-prob`: the fraction of tokens BERT's data masks.
    public var maskProb = 0.15
    /// `--short-seq-prob`: the probability that a BERT sample targets a shorter length.
    public var shortSeqProb = 0.1
    public var numLayers = 0
    public var hiddenSize = 0
    /// `--ffn-hidden-size` (nil: 4 x hidden size).
    public var ffnHiddenSize: Int?
    public var numAttentionHeads = 0
    public var seqLength = 0
    public var maxPositionEmbeddings: Int?
    public var initMethodStd = 0.02
    /// `--no-bias-gelu-fusion`: the exact erf GELU (default: tanh, Megatron's fused bias-GELU).
    public var noBiasGeluFusion = false
    /// `--untie-embeddings-and-output-weights`: the output layer gets a weight of its own.
    public var untieEmbeddingsAndOutputWeights = false
    /// `--make-vocab-size-divisible-by`: the vocabulary is padded to a multiple of it (not of it
    /// times TP as in Megatron: the padded size, so the model, does not change with the layout).
    public var makeVocabSizeDivisibleBy = 128
    /// `--norm-epsilon`: the LayerNorms' epsilon.
    public var normEpsilon = 1e-5
    /// `--hidden-dropout` and `--attention-dropout` (0 here; Megatron's default is 0.1).
    public var hiddenDropout = 0.0
    public var attentionDropout = 0.0
    // Batch.
    public var microBatchSize = 1
    /// `--global-batch-size`: required, so always set in a validated config (0 before).
    public var globalBatchSize = 0 { didSet { globalBatchSizeGiven = true } }
    private var globalBatchSizeGiven = false
    public var rampupBatchSize: [Int]?
    // Optimizer and schedule.
    public var lr = 0.0
    public var minLR = 0.0
    public var lrDecayStyle = LearningRateSchedule.Style.linear
    public var lrWarmupIters: Int?
    public var lrWarmupSamples: Int?
    public var lrDecayIters: Int?
    public var lrDecaySamples: Int?
    public var weightDecay = 0.01
    public var adamBeta1 = 0.9
    public var adamBeta2 = 0.999
    public var adamEps = 1e-8
    public var clipGrad = 1.0
    public var trainIters: Int?
    public var trainSamples: Int?
    /// `--no-check-for-nan-in-loss-and-grad`: skip (and count) an iteration whose loss or gradient
    /// norm is not finite instead of stopping the run.
    public var noCheckForNaNInLossAndGrad = false
    /// Megatron's `check_for_nan_in_loss_and_grad` (on by default): a non-finite loss or gradient
    /// norm stops training with an error naming the iteration.
    public var checkForNaNInLossAndGrad: Bool { !noCheckForNaNInLossAndGrad }
    // Mixed precision.
    /// `--bf16`: the linear layers' GEMMs in bf16 (see `ComputePrecision`).
    public var bf16 = false
    /// `--fp16`: the linear layers' GEMMs in fp16, with loss scaling.
    public var fp16 = false
    /// `--loss-scale`: a static loss scale for fp16 (nil: dynamic).
    public var lossScale: Double?
    /// `--initial-loss-scale`, `--min-loss-scale`, `--loss-scale-window`, `--hysteresis`: the
    /// dynamic loss scaler (Megatron's defaults).
    public var initialLossScale = 4_294_967_296.0
    public var minLossScale = 1.0
    public var lossScaleWindow = 1000
    public var hysteresis = 2
    /// `--max-skips-at-min-loss-scale`: overflowing iterations in a row at the minimum (or the
    /// static) scale after which the run stops.
    public var maxSkipsAtMinLossScale = 10
    /// `--accumulate-allreduce-grads-in-fp32`: accepted; gradients are always fp32 here.
    public var accumulateAllreduceGradsInFp32 = false
    /// The number format of the run's GEMMs.
    public var precision: ComputePrecision { bf16 ? .bf16 : fp16 ? .fp16 : .fp32 }
    // Data.
    public var dataPath: [String] = []
    /// `--train-data-path`, `--valid-data-path`, `--test-data-path`: a blend per split, each
    /// dataset used whole for its split, instead of `--data-path` and `--split` (empty: not given).
    public var trainDataPath: [String] = []
    public var validDataPath: [String] = []
    public var testDataPath: [String] = []
    public var split = "969, 30, 1"
    /// `--tokenizer-type`: optional, checked against the tokenizer files given.
    public var tokenizerType: String?
    public var tokenizerFile: String?
    public var vocabFile: String?
    public var mergeFile: String?
    public var dataCachePath: String?
    public var eodMaskLoss = false
    // Run.
    public var seed = 1234
    public var logInterval = 100
    public var evalInterval = 1000
    public var evalIters = 100
    public var save: String?
    public var saveInterval: Int?
    public var load: String?
    /// `--finetune`: weights only from `load`; iteration, consumed samples and optimizer start afresh.
    public var finetune = false
    /// `--no-load-optim`: fresh optimizer moments; the run's position comes from the checkpoint.
    public var noLoadOptim = false
    /// `--no-load-rng`: accepted; checkpoints hold no RNG state (dropout is keyed by seed and sample).
    public var noLoadRng = false
    public var tensorboardDir: String?
    public var metricsFile: String?
    /// `--dashboard-port`: global rank 0 serves the run's dashboard (from `metricsFile`) there.
    public var dashboardPort: Int?
    /// `--dashboard-host`: the dashboard's address (loopback by default).
    public var dashboardHost = TrainingConfig.loopback
    /// The default `--dashboard-host`: loopback only.
    public static let loopback = "127.0.0.1"
    /// `--exit-signal-handler`: on SIGTERM or SIGINT finish the iteration, save and exit 0.
    public var exitSignalHandler = false
    /// `--exit-interval`: save and exit at the first iteration that is a multiple of it.
    public var exitInterval: Int?
    /// `--exit-duration-in-mins`: save and exit once the run has lasted this many minutes.
    public var exitDurationInMins: Double?
    // Parallelism.
    public var tensorModelParallelSize = 1
    public var pipelineModelParallelSize = 1
    /// Layers per model chunk of the interleaved 1F1B schedule (Megatron's
    /// `--num-layers-per-virtual-pipeline-stage`); nil: one chunk per stage (plain 1F1B).
    public var numLayersPerVirtualPipelineStage: Int?
    /// The data-parallel size: rank threads outside mpirun; under mpirun it defaults to
    /// np / TP and, when given, must match the world.
    public var dataParallelSize: Int?
    public var useDistributedOptimizer = false
    /// `--sequence-parallel`: the LayerNorms, residuals and dropout hold `1/TP` of each sequence
    /// (Korthikanti et al. 2022); turned off, with a warning, when TP is 1 (as Megatron does).
    public var sequenceParallel = false
    /// Elements per data-parallel gradient all-reduce (Megatron's `--ddp-bucket-size`; default
    /// max(40M, 1M x DP)). Buckets run one after another after the backward, not overlapped.
    public var ddpBucketSize: Int?
    /// `--recompute-granularity` (nil: keep every activation).
    public var recomputeGranularity: ActivationRecomputation.Granularity?
    /// `--recompute-method` (with full; nil: uniform).
    public var recomputeMethod: ActivationRecomputation.Method?
    /// `--recompute-num-layers` (with full; nil: 1).
    public var recomputeNumLayers: Int?
    /// `--device`: the CPU, or one NVIDIA GPU (one rank: TP, PP and DP of 1).
    public var device = ComputeDevice.cpu
    /// The settings the config was built from, merged (later sources override earlier ones);
    /// stored in checkpoints as the run's arguments.
    public private(set) var arguments = JSONValue.object([])

    /// Megatron's defaults, not yet valid (the required flags are unset).
    public init() {}

    /// Parses Megatron-style command-line words (`--lr 3e-4`, `--lr=3e-4`, `--eod-mask-loss`,
    /// `--data-path 0.3 a 0.7 b`) into settings; `--config FILE` is returned separately.
    public static func settings(fromArguments words: [String]) throws(TrainingError) -> (config: String?, settings: [(key: String, value: JSONValue)]) {
        var settings = [(key: String, value: JSONValue)]()
        var configFile: String?
        var i = 0
        while i < words.count {
            let word = words[i]
            guard word.hasPrefix("--"), word.count > 2 else {
                throw .invalidFlag(word, "expected a flag such as --num-layers")
            }
            var name = String(word.dropFirst(2))
            var inline: String?
            if let equals = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            i += 1
            var values = [String]()
            if let inline { values = [inline] }
            func takeValue() throws(TrainingError) -> String {
                if let first = values.first { return first }
                guard i < words.count, !words[i].hasPrefix("--") else { throw .invalidFlag("--\(name)", "needs a value") }
                i += 1
                return words[i - 1]
            }
            if name == "config" {
                configFile = try takeValue()
                continue
            }
            guard let kind = TrainingFlag.named(name)?.kind, !name.contains("_") else { throw .invalidFlag("--\(name)", "unknown flag") }
            switch kind {
            case .flag:
                guard inline == nil else { throw .invalidFlag("--\(name)", "takes no value") }
                settings.append((name, .bool(true)))
            case .words:
                while i < words.count && !words[i].hasPrefix("--") {
                    values.append(words[i])
                    i += 1
                }
                guard !values.isEmpty else { throw .invalidFlag("--\(name)", "needs a value") }
                settings.append((name, .array(values.map { .string($0) })))
            case .string:
                settings.append((name, .string(try takeValue())))
            case .integer, .number:
                let text = try takeValue()
                guard let number = Double(text) else { throw .invalidFlag("--\(name)", "'\(text)' is not a number") }
                settings.append((name, .number(number)))
            }
        }
        return (configFile, settings)
    }

    /// The setting names (flags without the leading dashes), from `TrainingFlag.all`.
    public static var names: [String] { TrainingFlag.all.map(\.name) }

    /// Builds a config from settings in order (later ones override earlier ones), then validates it.
    /// `source` names where each batch of settings came from, for errors.
    public init(settings: [(source: String, values: [(key: String, value: JSONValue)])]) throws(TrainingError) {
        var merged = [(key: String, value: JSONValue)]()
        for (source, values) in settings {
            for (rawKey, value) in values {
                let key = rawKey.replacing("_", with: "-")
                try set(key, value, source: source)
                merged.removeAll { $0.key == key }
                merged.append((key, value))
            }
        }
        arguments = .object(merged)
        try validate()
    }

    /// Reads settings from a config file: a JSON object (`{"num-layers": 12, ...}`) or, for
    /// `.yaml`/`.yml`, YAML: flat (`num_layers: 12`) or Megatron's nested `--yaml-cfg` layout
    /// (see `YAMLSettings`); `_` or `-` in names. Errors name the file.
    /// A setting given twice in one file (also as `num_layers` and `num-layers`) is an error.
    public static func settings(fromFile path: String) throws(TrainingError) -> [(key: String, value: JSONValue)] {
        let document: JSONValue?
        do { document = try ConfigDocument.read(path) } catch { throw .config(path: path, reason: error.description) }
        let members: [(key: String, value: JSONValue)]
        if ConfigDocument.isYAML(path) {
            members = try YAMLSettings.settings(of: document, source: path)
        } else {
            guard case let .object(object)? = document else { throw .config(path: path, reason: "expected a JSON object") }
            members = object
        }
        var seen = [String: String]()
        for (key, _) in members {
            let name = key.replacing("_", with: "-")
            if let earlier = seen[name] {
                throw .config(path: path, reason: earlier == key ? "\"\(key)\" is given twice"
                                                                 : "\"\(earlier)\" and \"\(key)\" are the same setting, given twice")
            }
            seen[name] = key
        }
        return members
    }

    private mutating func set(_ key: String, _ value: JSONValue, source: String) throws(TrainingError) {
        guard let flag = TrainingFlag.named(key) else { throw .config(path: source, reason: "unknown setting \"\(key)\"") }
        try flag.apply(&self, Setting(key: key, value: value, source: source))
    }

    /// Checks ranges and combinations; the error names the flag. Each integer and number flag's
    /// range comes from its `TrainingFlag.range` (finite, and e.g. `--lr` > 0, `--adam-beta1` in
    /// [0, 1)); the rest are the rules between flags.
    public func validate() throws(TrainingError) {
        for flag in TrainingFlag.all { if let error = flag.rangeViolation(in: self) { throw error } }
        if device == .cuda && tensorModelParallelSize * pipelineModelParallelSize * (dataParallelSize ?? 1) > 1 {
            throw .invalidFlag("--device cuda", "runs one rank (TP, PP and DP of 1): GPUs do not talk to each other yet")
        }
        // The model shape over TP and the stages (RankGrid's rules; the vocabulary and the batch
        // over DP are checked when the tokenizer and the world are known).
        do {
            try RankGrid(tensorParallel: tensorModelParallelSize, dataParallel: 1, pipelineParallel: pipelineModelParallelSize)
                .validate(heads: numAttentionHeads, hidden: hiddenSize, paddedVocabulary: nil, layers: numLayers)
        } catch {
            throw .layout(error.description)
        }
        if let perChunk = numLayersPerVirtualPipelineStage {
            guard pipelineModelParallelSize > 1 else {
                throw .invalidFlag("--num-layers-per-virtual-pipeline-stage", "needs --pipeline-model-parallel-size of at least 2")
            }
            do { _ = try GPTPipelinePart.chunks(numLayers: numLayers, stages: pipelineModelParallelSize, layersPerChunk: perChunk) } catch {
                throw TrainingError(error)
            }
        }
        do {
            _ = try ActivationRecomputation(flags: recomputeGranularity, method: recomputeMethod, numLayers: recomputeNumLayers)
            try recomputation.validate(layersPerChunk: numLayers / (pipelineModelParallelSize * virtualPipelineChunks))
        } catch {
            throw TrainingError(error)
        }
        if usesSequenceParallel && seqLength % tensorModelParallelSize != 0 {
            throw .invalidFlag("--sequence-parallel", "splits each sequence over the \(tensorModelParallelSize) tensor-parallel ranks: --seq-length \(seqLength) is not a multiple of \(tensorModelParallelSize)")
        }
        if bf16 && fp16 { throw .invalidFlag("--bf16", "give at most one of --bf16 and --fp16") }
        if lossScale != nil && !fp16 { throw .invalidFlag("--loss-scale", "needs --fp16") }
        if finetune && load == nil { throw .invalidFlag("--finetune", "needs --load") }
        if dashboardPort != nil && metricsFile == nil {
            throw .invalidFlag("--dashboard-port", "needs --metrics-file (the page draws what the run writes there)")
        }
        if dashboardHost != Self.loopback && dashboardPort == nil {
            throw .invalidFlag("--dashboard-host", "needs --dashboard-port (without it no dashboard is served)")
        }
        if noLoadOptim && load == nil { throw .invalidFlag("--no-load-optim", "needs --load") }
        if minLossScale > initialLossScale {
            throw .invalidFlag("--min-loss-scale", "must not exceed --initial-loss-scale \(initialLossScale), got \(minLossScale)")
        }
        guard (trainIters == nil) != (trainSamples == nil) else {
            throw .invalidFlag("--train-iters", "give exactly one of --train-iters and --train-samples")
        }
        if trainSamples != nil && (lrWarmupIters != nil || lrDecayIters != nil) {
            throw .invalidFlag("--lr-warmup-iters", "with --train-samples use --lr-warmup-samples and --lr-decay-samples")
        }
        if lrWarmupIters != nil && lrWarmupSamples != nil {
            throw .invalidFlag("--lr-warmup-iters", "give at most one of --lr-warmup-iters and --lr-warmup-samples")
        }
        if lrDecayIters != nil && lrDecaySamples != nil {
            throw .invalidFlag("--lr-decay-iters", "give at most one of --lr-decay-iters and --lr-decay-samples")
        }
        guard globalBatchSizeGiven else { throw .invalidFlag("--global-batch-size", "is required") }
        guard globalBatchSize > 0, globalBatchSize % microBatchSize == 0 else {
            throw .invalidFlag("--global-batch-size", "\(globalBatchSize) is not a positive multiple of --micro-batch-size \(microBatchSize)")
        }
        guard minLR <= lr else { throw .invalidFlag("--min-lr", "must be in [0, --lr \(lr)], got \(minLR)") }
        try validateLengths()
        if trainDataPath.isEmpty {
            guard !dataPath.isEmpty else { throw .invalidFlag("--data-path", "is required (or --train-data-path)") }
            for (words, flag) in [(validDataPath, "--valid-data-path"), (testDataPath, "--test-data-path")] where !words.isEmpty {
                throw .invalidFlag(flag, "needs --train-data-path")
            }
        } else if !dataPath.isEmpty {
            throw .invalidFlag("--train-data-path", "give either --data-path (with --split) or the per-split --train-data-path, --valid-data-path, --test-data-path")
        }
        try validateModelType()
        guard (maxPositionEmbeddings ?? seqLength) >= seqLength else {
            throw .invalidFlag("--max-position-embeddings", "must be at least --seq-length \(seqLength)")
        }
    }

    /// The most tokens a run may index (2^50): sample and token counts stay far inside `Int`.
    public static let maximumTokens = 1 << 50

    /// Batch and length flags whose products count tokens: a micro-batch holds at most 2^31 - 1
    /// tokens (its rows are indexed with 32-bit integers), and the training, schedule and
    /// evaluation lengths at most `maximumTokens`.
    private func validateLengths() throws(TrainingError) {
        let microBatchTokens = microBatchSize.multipliedReportingOverflow(by: seqLength)
        if microBatchTokens.overflow || microBatchTokens.partialValue > Int(Int32.max) {
            throw .invalidFlag("--micro-batch-size", "\(microBatchSize) samples of --seq-length \(seqLength) tokens "
                + "are more than 2^31 - 1 tokens in one micro-batch")
        }
        func tokens(_ samples: Int, _ multiplier: Int = 1) -> Int? {
            let product = samples.multipliedReportingOverflow(by: multiplier)
            let count = product.partialValue.multipliedReportingOverflow(by: seqLength)
            return product.overflow || count.overflow || count.partialValue > Self.maximumTokens ? nil : count.partialValue
        }
        let lengths: [(Int?, Int, String)] = [(trainIters, globalBatchSize, "--train-iters"), (trainSamples, 1, "--train-samples"),
                                              (lrWarmupIters, globalBatchSize, "--lr-warmup-iters"),
                                              (lrDecayIters, globalBatchSize, "--lr-decay-iters"),
                                              (lrWarmupSamples, 1, "--lr-warmup-samples"), (lrDecaySamples, 1, "--lr-decay-samples"),
                                              (evalIters, globalBatchSize, "--eval-iters")]
        for case let (value?, multiplier, flag) in lengths where tokens(value, multiplier) == nil {
            throw .invalidFlag(flag, "\(value) is more than 2^50 tokens at this batch size and sequence length")
        }
    }
}
