import FileSupport
import Optimizer
import Testing
@testable import Training

@Suite struct RecipeTests {
    @Test func warmupThenCosineToMinimum() {
        let schedule = LearningRateSchedule(maxLR: 1e-3, minLR: 1e-4, style: .cosine, warmupSamples: 100, decaySamples: 1100)
        #expect(schedule.learningRate(afterSamples: 0) == 0)
        #expect(abs(schedule.learningRate(afterSamples: 50) - 5e-4) < 1e-15)
        #expect(schedule.learningRate(afterSamples: 100) == 1e-3)
        #expect(abs(schedule.learningRate(afterSamples: 600) - 5.5e-4) < 1e-12)  // half way: (max + min) / 2
        #expect(abs(schedule.learningRate(afterSamples: 1100) - 1e-4) < 1e-15)
        #expect(schedule.learningRate(afterSamples: 5000) == 1e-4)
    }

    @Test func linearAndConstantDecay() {
        let linear = LearningRateSchedule(maxLR: 2.0, minLR: 0, style: .linear, warmupSamples: 0, decaySamples: 10)
        #expect(linear.learningRate(afterSamples: 0) == 2.0)
        #expect(linear.learningRate(afterSamples: 5) == 1.0)
        #expect(linear.learningRate(afterSamples: 11) == 0)
        let constant = LearningRateSchedule(maxLR: 2.0, minLR: 0, style: .constant, warmupSamples: 4, decaySamples: 10)
        #expect(constant.learningRate(afterSamples: 2) == 1.0)
        #expect(constant.learningRate(afterSamples: 100) == 2.0)
    }

    @Test func batchSizeRampup() throws {
        // 32 -> 1920 in steps of 32: 59 increments over 12,000 samples.
        let ramp = try BatchSizeRampup(start: 32, increment: 32, samples: 11_800, finalBatchSize: 1920,
                                       microBatchTimesDataParallel: 8)
        #expect(ramp.globalBatchSize(consumedSamples: 0) == 32)
        #expect(ramp.globalBatchSize(consumedSamples: 199) == 32)
        #expect(ramp.globalBatchSize(consumedSamples: 200) == 64)
        #expect(ramp.globalBatchSize(consumedSamples: 11_800) == 1920)
        #expect(ramp.globalBatchSize(consumedSamples: 11_801) == 1920)
        #expect(throws: TrainingError.self) {
            try BatchSizeRampup(start: 32, increment: 48, samples: 100, finalBatchSize: 1920, microBatchTimesDataParallel: 8)
        }
        #expect(throws: TrainingError.self) {
            try BatchSizeRampup(start: 4, increment: 4, samples: 100, finalBatchSize: 16, microBatchTimesDataParallel: 8)
        }
    }

    @Test func clippingCoefficient() {
        #expect(GradientClipping.coefficient(norm: 0.5, clip: 1) == 1)
        #expect(abs(GradientClipping.coefficient(norm: 4, clip: 1) - 0.25) < 1e-6)
        #expect(GradientClipping.coefficient(norm: 4, clip: 0) == 1)
    }

    static let required: [(key: String, value: JSONValue)] = [
        ("num-layers", .number(2)), ("hidden-size", .number(32)), ("num-attention-heads", .number(2)),
        ("seq-length", .number(16)), ("global-batch-size", .number(4)), ("lr", .number(1e-3)),
        ("train-iters", .number(10)), ("data-path", .string("a")), ("tokenizer-file", .string("t.json")),
    ]

    @Test func settingsFromFileAndFlags() throws {
        let file: [(key: String, value: JSONValue)] = Self.required + [("micro_batch_size", .number(2)), ("lr-decay-style", .string("cosine"))]
        let config = try TrainingConfig(settings: [("run.json", file), ("command line", [("lr", .number(5e-4))])])
        #expect(config.microBatchSize == 2 && config.lrDecayStyle == .cosine && config.lr == 5e-4)
        #expect(try config.schedule().decaySamples == 40)

        func failure(_ extra: [(key: String, value: JSONValue)]) -> String {
            do {
                _ = try TrainingConfig(settings: [("run.json", Self.required + extra)])
                return "ok"
            } catch {
                return error.description
            }
        }
        #expect(failure([]) == "ok")
        #expect(failure([("num-layer", .number(2))]) == "run.json: unknown setting \"num-layer\"")
        #expect(failure([("lr", .string("fast"))]) == "run.json: lr must be a number, got a string")
        #expect(failure([("micro-batch-size", .number(3))]).contains("not a positive multiple of --micro-batch-size 3"))
        #expect(failure([("train-samples", .number(3))]).contains("exactly one of --train-iters and --train-samples"))
        #expect(failure([("lr-decay-style", .string("step"))]).contains("constant, linear or cosine"))
    }
}

@Suite struct TrainArgumentTests {
    @Test func megatronStyleArguments() throws {
        let words = ["--config", "run.json", "--num-layers", "4", "--lr=3e-4", "--eod-mask-loss",
                     "--data-path", "0.3", "a", "0.7", "b", "--split", "969,30,1", "--save", "100"]
        let parsed = try TrainingConfig.settings(fromArguments: words)
        #expect(parsed.config == "run.json")
        let keys = parsed.settings.map(\.key)
        #expect(keys == ["num-layers", "lr", "eod-mask-loss", "data-path", "split", "save"])
        #expect(parsed.settings[1].value == .number(3e-4))
        #expect(parsed.settings[3].value == .array(["0.3", "a", "0.7", "b"].map { .string($0) }))
        #expect(parsed.settings[5].value == .string("100"))  // a path, even when it looks like a number
        #expect(throws: TrainingError.invalidFlag("--num-layerz", "unknown flag")) {
            try TrainingConfig.settings(fromArguments: ["--num-layerz", "3"])
        }
        #expect(throws: TrainingError.invalidFlag("--lr", "needs a value")) {
            try TrainingConfig.settings(fromArguments: ["--lr", "--seed", "1"])
        }
        #expect(throws: TrainingError.invalidFlag("--seed", "'x' is not a number")) {
            try TrainingConfig.settings(fromArguments: ["--seed", "x"])
        }
    }

    @Test func pipelineLayoutsThatDoNotDivideAreErrors() throws {
        func config(_ extra: [(key: String, value: JSONValue)]) throws -> TrainingConfig {
            try ResumeTests.config(prefix: "unused", extra: [("num-layers", .number(6))] + extra)
        }
        #expect(try config([("pipeline-model-parallel-size", .number(3))]).virtualPipelineChunks == 1)
        #expect(try config([("pipeline-model-parallel-size", .number(3)),
                            ("num-layers-per-virtual-pipeline-stage", .number(1))]).virtualPipelineChunks == 2)
        #expect(throws: TrainingError.layout("--pipeline-model-parallel-size 4 does not divide --num-layers 6")) {
            try config([("pipeline-model-parallel-size", .number(4))])
        }
        #expect(throws: TrainingError.invalidFlag("--num-layers-per-virtual-pipeline-stage", "needs --pipeline-model-parallel-size of at least 2")) {
            try config([("num-layers-per-virtual-pipeline-stage", .number(2))])
        }
        #expect(throws: TrainingError.invalidFlag("--num-layers-per-virtual-pipeline-stage", "2 does not divide the 3 layers of a stage")) {
            try config([("pipeline-model-parallel-size", .number(2)), ("num-layers-per-virtual-pipeline-stage", .number(2))])
        }
    }
}

@Suite struct TensorBoardTests {
    @Test func crc32cAndRecordFraming() throws {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)  // the standard check value
        let directory = "/tmp/megatron-tb-\(UInt32.random(in: 0...UInt32.max))"
        let writer = try TensorBoardWriter(directory: directory)
        try writer.scalars([("lm loss", 2.5)], step: 7)
        let bytes = try MappedFile.read(path: writer.path)
        // Two records, each: u64 length, u32 masked crc of the length, data, u32 masked crc of the data.
        var offset = 0, records = 0
        while offset < bytes.count {
            let length = Int(bytes[offset..<(offset + 8)].reversed().reduce(0) { $0 << 8 | UInt64($1) })
            let lengthCRC = bytes[(offset + 8)..<(offset + 12)].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            #expect(lengthCRC == CRC32C.masked(Array(bytes[offset..<(offset + 8)])))
            let data = Array(bytes[(offset + 12)..<(offset + 12 + length)])
            let dataCRC = bytes[(offset + 12 + length)..<(offset + 16 + length)].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            #expect(dataCRC == CRC32C.masked(data))
            offset += 16 + length
            records += 1
        }
        #expect(records == 2 && offset == bytes.count)
    }
}

@Suite struct ConfigFileTests {
    @Test func flatYAMLConfig() throws {
        let path = "/tmp/megatron-run-\(UInt32.random(in: 0...UInt32.max)).yaml"
        try AtomicFile.write(Array("""
        # a run
        num_layers: 2
        hidden-size: 32   # inline comment
        num_attention_heads: 2
        seq_length: 16
        global_batch_size: 4
        lr: 1.0e-3
        train_iters: 10
        split: 969,30,1
        tokenizer_file: "t.json"
        eod_mask_loss: true
        data_path:
          - 0.3
          - a
          - 0.7
          - b
        """.utf8), to: path)
        let settings = try TrainingConfig.settings(fromFile: path)
        let config = try TrainingConfig(settings: [(path, settings)])
        #expect(config.numLayers == 2 && config.hiddenSize == 32 && config.lr == 1e-3 && config.eodMaskLoss)
        #expect(config.split == "969,30,1" && config.tokenizerFile == "t.json")
        #expect(config.dataPath == ["0.3", "a", "0.7", "b"])
        try AtomicFile.write(Array("model:\n  num_layers: 2\n".utf8), to: path)
        #expect(throws: TrainingError.config(path: path, reason: "model: nested settings are read only in Megatron's sections language_model and model_parallel")) {
            try TrainingConfig.settings(fromFile: path)
        }
    }

    /// Megatron's `--yaml-cfg` layout (flags inside `language_model:` and `model_parallel:`)
    /// gives the same config, arguments included, as the flat file.
    @Test func nestedYAMLEqualsFlat() throws {
        let base = "/tmp/megatron-run-\(UInt32.random(in: 0...UInt32.max))"
        try AtomicFile.write(Array("""
        num_layers: 2
        hidden_size: 32
        num_attention_heads: 2
        init_method_std: 0.01
        tensor_model_parallel_size: 2
        pipeline_model_parallel_size: 2
        micro_batch_size: 2
        global_batch_size: 8
        rampup_batch_size: [4, 2, 16]
        lr: 2.5e-4
        train_iters: 10
        seq_length: 16
        split: '99,1,0'
        data_path: [a]
        tokenizer_file: t.json
        use_distributed_optimizer: true
        """.utf8), to: base + "-flat.yaml")
        try AtomicFile.write(Array("""
        # WARNING: Yaml configs is currently an experimental feature
        language_model:
          # model architecture
          num_layers: 2
          hidden_size: 32
          num_attention_heads: 2
          init_method_std: 0.01
        model_parallel:
          tensor_model_parallel_size: 2
          pipeline_model_parallel_size: 2

        # training:
        micro_batch_size: 2
        global_batch_size: 8
        rampup_batch_size: [4, 2, 16]
        lr: 2.5e-4
        train_iters: 10
        seq_length: 16
        split: '99,1,0'
        data_path:
          - a
        tokenizer_file: t.json
        use_distributed_optimizer: True
        """.utf8), to: base + "-nested.yaml")
        let flat = try TrainingConfig(settings: [("flat", try TrainingConfig.settings(fromFile: base + "-flat.yaml"))])
        let nested = try TrainingConfig(settings: [("flat", try TrainingConfig.settings(fromFile: base + "-nested.yaml"))])
        #expect(flat == nested)
        #expect(flat.arguments.serialized == nested.arguments.serialized)
        #expect(nested.tensorModelParallelSize == 2 && nested.numLayers == 2 && nested.rampupBatchSize == [4, 2, 16])
        #expect(nested.split == "99,1,0" && nested.useDistributedOptimizer && nested.lr == 2.5e-4)
    }

    /// Broken YAML is one error line naming the file and where it broke.
    @Test func malformedYAMLNamesTheFile() throws {
        let path = "/tmp/megatron-run-\(UInt32.random(in: 0...UInt32.max)).yaml"
        try AtomicFile.write(Array("num_layers: 2\nhidden_size: [32\nlr: 1\n".utf8), to: path)
        do {
            _ = try TrainingConfig.settings(fromFile: path)
            Issue.record("a malformed file was accepted")
        } catch {
            #expect(error.description.hasPrefix(path + ": malformed YAML at line "))
            #expect(!error.description.contains("\n"))
        }
        for (text, reason) in [
            ("- num_layers\n", "expected a mapping of settings such as `num_layers: 12`"),
            ("language_model:\n  hidden_size: {a: 1}\n", "language_model.hidden_size: nested mappings are not settings"),
            ("data_path: [[1, a]]\n", "data_path: list items must be plain values"),
            ("# nothing set yet\n", "the YAML config holds no settings (empty, or comments only)"),
        ] {
            try AtomicFile.write(Array(text.utf8), to: path)
            #expect(throws: TrainingError.config(path: path, reason: reason)) { try TrainingConfig.settings(fromFile: path) }
        }
        // Numbers are decimal: hex and inf stay text (and are then refused by the setting's type).
        try AtomicFile.write(Array("lr: 3e-4\nseed: 0x10\nmin_lr: inf\n".utf8), to: path)
        let numbers = try TrainingConfig.settings(fromFile: path)
        #expect(numbers.map(\.value) == [.number(3e-4), .string("0x10"), .string("inf")])
        try AtomicFile.write(Array("language_model:\n  rotary_percent: 0.5\n".utf8), to: path)
        #expect(throws: TrainingError.config(path: path, reason: "unknown setting \"rotary-percent\"")) {
            try TrainingConfig(settings: [(path, try TrainingConfig.settings(fromFile: path))])
        }
        // Megatron's YAML writes null for "the default" of an optional setting.
        try AtomicFile.write(Array("language_model:\n  ffn_hidden_size: null\n".utf8), to: path)
        do {
            _ = try TrainingConfig(settings: [(path, try TrainingConfig.settings(fromFile: path))])
        } catch {
            #expect(!"\(error)".contains("ffn"), "\(error)")  // only the required settings are missing
        }
    }
}
