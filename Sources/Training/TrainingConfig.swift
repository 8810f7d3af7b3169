import FileSupport
import Models

/// Everything `megatron train` needs, under Megatron's flag names. Built from settings (a flag
/// name without dashes -> value) that come from a config file and the command line, so that both
/// are checked by the same code: an unknown name or a value of the wrong type is an error.
public struct TrainingConfig: Sendable, Equatable {
    // Model.
    public var numLayers = 0
    public var hiddenSize = 0
    public var numAttentionHeads = 0
    public var seqLength = 0
    public var maxPositionEmbeddings: Int?
    public var initMethodStd = 0.02
    // Batch.
    public var microBatchSize = 1
    public var globalBatchSize: Int?
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
    // Data.
    public var dataPath: [String] = []
    public var split = "969, 30, 1"
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
    public var tensorboardDir: String?
    public var metricsFile: String?
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
    /// Elements per data-parallel gradient all-reduce (Megatron's `--ddp-bucket-size`; default
    /// max(40M, 1M x DP)). Buckets run one after another after the backward, not overlapped.
    public var ddpBucketSize: Int?
    /// The settings the config was built from, merged (later sources override earlier ones);
    /// stored in checkpoints as the run's arguments.
    public private(set) var arguments = JSONValue.object([])

    public init() {}

    /// How a setting's command-line words become a value.
    public enum Kind: Sendable {
        case integer, number, string, flag, words
    }

    /// The kind of each setting (flags without the leading dashes).
    public static let kinds: [String: Kind] = {
        var kinds = [String: Kind]()
        for name in names { kinds[name] = .integer }
        for name in ["init-method-std", "lr", "min-lr", "weight-decay", "adam-beta1", "adam-beta2", "adam-eps", "clip-grad"] {
            kinds[name] = .number
        }
        for name in ["lr-decay-style", "split", "tokenizer-file", "vocab-file", "merge-file", "data-cache-path",
                     "save", "load", "tensorboard-dir", "metrics-file"] {
            kinds[name] = .string
        }
        kinds["eod-mask-loss"] = .flag
        kinds["use-distributed-optimizer"] = .flag
        kinds["data-path"] = .words
        kinds["rampup-batch-size"] = .words
        return kinds
    }()

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
            guard let kind = kinds[name] else { throw .invalidFlag("--\(name)", "unknown flag") }
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

    /// The setting names (flags without the leading dashes).
    public static let names = [
        "num-layers", "hidden-size", "num-attention-heads", "seq-length", "max-position-embeddings",
        "init-method-std", "micro-batch-size", "global-batch-size", "rampup-batch-size", "lr", "min-lr",
        "lr-decay-style", "lr-warmup-iters", "lr-warmup-samples", "lr-decay-iters", "lr-decay-samples",
        "weight-decay", "adam-beta1", "adam-beta2", "adam-eps", "clip-grad", "train-iters", "train-samples",
        "data-path", "split", "tokenizer-file", "vocab-file", "merge-file", "data-cache-path", "eod-mask-loss",
        "seed", "log-interval", "eval-interval", "eval-iters", "save", "save-interval", "load",
        "tensorboard-dir", "metrics-file", "tensor-model-parallel-size", "pipeline-model-parallel-size",
        "num-layers-per-virtual-pipeline-stage",
        "data-parallel-size", "use-distributed-optimizer", "ddp-bucket-size",
    ]

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
    /// `.yaml`/`.yml`, flat YAML (`num_layers: 12`); `_` or `-` in names.
    public static func settings(fromFile path: String) throws(TrainingError) -> [(key: String, value: JSONValue)] {
        let bytes: [UInt8]
        do { bytes = try MappedFile.read(path: path) } catch { throw .config(path: path, reason: error.reason) }
        if path.hasSuffix(".yaml") || path.hasSuffix(".yml") {
            return try FlatYAML.parse(String(decoding: bytes, as: UTF8.self), source: path)
        }
        let value: JSONValue
        do {
            value = try JSONValue.parse(utf8: bytes)
        } catch {
            throw .config(path: path, reason: "malformed JSON: \(error)")
        }
        guard case let .object(members) = value else { throw .config(path: path, reason: "expected a JSON object") }
        return members
    }

    private mutating func set(_ key: String, _ value: JSONValue, source: String) throws(TrainingError) {
        func fail(_ expected: String) -> TrainingError {
            .config(path: source, reason: "\(key) must be \(expected), got \(value.typeName)")
        }
        func int() throws(TrainingError) -> Int {
            guard case let .number(x) = value, x == x.rounded(), abs(x) < 9e15 else { throw fail("an integer") }
            return Int(x)
        }
        func double() throws(TrainingError) -> Double {
            guard case let .number(x) = value else { throw fail("a number") }
            return x
        }
        func string() throws(TrainingError) -> String {
            guard case let .string(s) = value else { throw fail("a string") }
            return s
        }
        func bool() throws(TrainingError) -> Bool {
            guard case let .bool(b) = value else { throw fail("true or false") }
            return b
        }
        func strings() throws(TrainingError) -> [String] {
            switch value {
            case let .string(s): return s.split(separator: " ").map(String.init)
            case let .array(items):
                var words = [String]()
                for item in items {
                    switch item {
                    case let .string(s): words.append(s)
                    case let .number(x): words.append(String(x))
                    default: throw fail("a list of strings")
                    }
                }
                return words
            default: throw fail("a list of strings")
            }
        }
        switch key {
        case "num-layers": numLayers = try int()
        case "hidden-size": hiddenSize = try int()
        case "num-attention-heads": numAttentionHeads = try int()
        case "seq-length": seqLength = try int()
        case "max-position-embeddings": maxPositionEmbeddings = try int()
        case "init-method-std": initMethodStd = try double()
        case "micro-batch-size": microBatchSize = try int()
        case "global-batch-size": globalBatchSize = try int()
        case "rampup-batch-size":
            let words = try strings()
            let numbers = words.compactMap { Double($0) }.map { Int($0) }
            guard numbers.count == 3, words.count == 3 else { throw fail("three integers: START INCREMENT SAMPLES") }
            rampupBatchSize = numbers
        case "lr": lr = try double()
        case "min-lr": minLR = try double()
        case "lr-decay-style":
            guard let style = LearningRateSchedule.Style(rawValue: try string()) else {
                throw .config(path: source, reason: "lr-decay-style must be constant, linear or cosine")
            }
            lrDecayStyle = style
        case "lr-warmup-iters": lrWarmupIters = try int()
        case "lr-warmup-samples": lrWarmupSamples = try int()
        case "lr-decay-iters": lrDecayIters = try int()
        case "lr-decay-samples": lrDecaySamples = try int()
        case "weight-decay": weightDecay = try double()
        case "adam-beta1": adamBeta1 = try double()
        case "adam-beta2": adamBeta2 = try double()
        case "adam-eps": adamEps = try double()
        case "clip-grad": clipGrad = try double()
        case "train-iters": trainIters = try int()
        case "train-samples": trainSamples = try int()
        case "data-path": dataPath = try strings()
        case "split": split = try string()
        case "tokenizer-file": tokenizerFile = try string()
        case "vocab-file": vocabFile = try string()
        case "merge-file": mergeFile = try string()
        case "data-cache-path": dataCachePath = try string()
        case "eod-mask-loss": eodMaskLoss = try bool()
        case "seed": seed = try int()
        case "log-interval": logInterval = try int()
        case "eval-interval": evalInterval = try int()
        case "eval-iters": evalIters = try int()
        case "save": save = try string()
        case "save-interval": saveInterval = try int()
        case "load": load = try string()
        case "tensorboard-dir": tensorboardDir = try string()
        case "metrics-file": metricsFile = try string()
        case "tensor-model-parallel-size": tensorModelParallelSize = try int()
        case "pipeline-model-parallel-size": pipelineModelParallelSize = try int()
        case "num-layers-per-virtual-pipeline-stage": numLayersPerVirtualPipelineStage = try int()
        case "data-parallel-size": dataParallelSize = try int()
        case "use-distributed-optimizer": useDistributedOptimizer = try bool()
        case "ddp-bucket-size": ddpBucketSize = try int()
        default:
            throw .config(path: source, reason: "unknown setting \"\(key)\"")
        }
    }

    /// Checks ranges and combinations; the error names the flag.
    public func validate() throws(TrainingError) {
        func positive(_ value: Int, _ flag: String) throws(TrainingError) {
            guard value > 0 else { throw .invalidFlag("--\(flag)", "must be positive, got \(value)") }
        }
        try positive(numLayers, "num-layers")
        try positive(hiddenSize, "hidden-size")
        try positive(numAttentionHeads, "num-attention-heads")
        try positive(seqLength, "seq-length")
        try positive(microBatchSize, "micro-batch-size")
        try positive(tensorModelParallelSize, "tensor-model-parallel-size")
        try positive(pipelineModelParallelSize, "pipeline-model-parallel-size")
        guard numLayers % pipelineModelParallelSize == 0 else {
            throw .invalidFlag("--pipeline-model-parallel-size", "\(pipelineModelParallelSize) stages do not divide --num-layers \(numLayers)")
        }
        if let perChunk = numLayersPerVirtualPipelineStage {
            try positive(perChunk, "num-layers-per-virtual-pipeline-stage")
            guard pipelineModelParallelSize > 1 else {
                throw .invalidFlag("--num-layers-per-virtual-pipeline-stage", "needs --pipeline-model-parallel-size of at least 2")
            }
            do { _ = try GPTPipelinePart.chunks(numLayers: numLayers, stages: pipelineModelParallelSize, layersPerChunk: perChunk) } catch {
                switch error {
                case let .invalid(flag, reason): throw .invalidFlag(flag, reason)
                case let .layout(layout): throw .layout(layout.description)
                }
            }
        }
        if let dataParallelSize { try positive(dataParallelSize, "data-parallel-size") }
        if let ddpBucketSize { try positive(ddpBucketSize, "ddp-bucket-size") }
        try positive(logInterval, "log-interval")
        try positive(evalInterval, "eval-interval")
        guard evalIters >= 0 else { throw .invalidFlag("--eval-iters", "must not be negative") }
        guard (trainIters == nil) != (trainSamples == nil) else {
            throw .invalidFlag("--train-iters", "give exactly one of --train-iters and --train-samples")
        }
        if let trainIters { try positive(trainIters, "train-iters") }
        if let trainSamples { try positive(trainSamples, "train-samples") }
        if trainSamples != nil && (lrWarmupIters != nil || lrDecayIters != nil) {
            throw .invalidFlag("--lr-warmup-iters", "with --train-samples use --lr-warmup-samples and --lr-decay-samples")
        }
        if lrWarmupIters != nil && lrWarmupSamples != nil {
            throw .invalidFlag("--lr-warmup-iters", "give at most one of --lr-warmup-iters and --lr-warmup-samples")
        }
        if lrDecayIters != nil && lrDecaySamples != nil {
            throw .invalidFlag("--lr-decay-iters", "give at most one of --lr-decay-iters and --lr-decay-samples")
        }
        guard let globalBatchSize else { throw .invalidFlag("--global-batch-size", "is required") }
        guard globalBatchSize > 0, globalBatchSize % microBatchSize == 0 else {
            throw .invalidFlag("--global-batch-size", "\(globalBatchSize) is not a positive multiple of --micro-batch-size \(microBatchSize)")
        }
        guard lr > 0 else { throw .invalidFlag("--lr", "must be positive, got \(lr)") }
        guard minLR >= 0, minLR <= lr else { throw .invalidFlag("--min-lr", "must be in [0, --lr]") }
        guard !dataPath.isEmpty else { throw .invalidFlag("--data-path", "is required") }
        guard tokenizerFile != nil || (vocabFile != nil && mergeFile != nil) else {
            throw .invalidFlag("--tokenizer-file", "give --tokenizer-file, or --vocab-file and --merge-file")
        }
        if save != nil, let saveInterval { try positive(saveInterval, "save-interval") }
        guard (0..<(1 << 32)).contains(seed) else { throw .invalidFlag("--seed", "must be in [0, 2^32)") }
        guard (maxPositionEmbeddings ?? seqLength) >= seqLength else {
            throw .invalidFlag("--max-position-embeddings", "must be at least --seq-length \(seqLength)")
        }
    }

    /// The ramp-up (nil without `--rampup-batch-size`).
    public func rampup() throws(TrainingError) -> BatchSizeRampup? {
        guard let r = rampupBatchSize else { return nil }
        return try BatchSizeRampup(start: r[0], increment: r[1], samples: r[2], finalBatchSize: globalBatchSize!,
                                   microBatchTimesDataParallel: microBatchSize)
    }

    /// Training length in samples, counting the ramp-up's smaller batches like Megatron.
    public func totalSamples() throws(TrainingError) -> Int {
        if let trainSamples { return trainSamples }
        guard let ramp = try rampup() else { return trainIters! * globalBatchSize! }
        var consumed = 0
        for _ in 0..<trainIters! { consumed += ramp.globalBatchSize(consumedSamples: consumed) }
        return consumed
    }

    /// Model chunks per pipeline stage (`v`): stage layers / `--num-layers-per-virtual-pipeline-stage`.
    public var virtualPipelineChunks: Int {
        guard let perChunk = numLayersPerVirtualPipelineStage else { return 1 }
        return (try? GPTPipelinePart.chunks(numLayers: numLayers, stages: pipelineModelParallelSize, layersPerChunk: perChunk)) ?? 1
    }

    /// The learning-rate schedule in samples.
    public func schedule() throws(TrainingError) -> LearningRateSchedule {
        let batch = globalBatchSize!
        let warmup = lrWarmupSamples ?? (lrWarmupIters ?? 0) * batch
        let decay: Int
        if let lrDecaySamples {
            decay = lrDecaySamples
        } else if let lrDecayIters {
            decay = lrDecayIters * batch
        } else {
            decay = try totalSamples()
        }
        return LearningRateSchedule(maxLR: lr, minLR: minLR, style: lrDecayStyle, warmupSamples: warmup,
                                    decaySamples: decay)
    }
}
