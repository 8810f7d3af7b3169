import FileSupport
import Testing
@testable import Training

/// The flag table: every entry is read with its declared type from the command line, JSON and
/// YAML, sets its own property, and is listed by `--help`.
@Suite struct TrainingFlagTests {
    /// A well-typed sample value of each flag: command-line words, JSON text and YAML text.
    static func sample(_ flag: TrainingFlag) -> (words: [String], json: String, yaml: String) {
        switch flag.name {
        case "rampup-batch-size": return (["4", "2", "16"], #"["4", "2", "16"]"#, #"["4", "2", "16"]"#)
        case "lr-decay-style": return (["cosine"], #""cosine""#, "cosine")
        case "recompute-granularity": return (["selective"], #""selective""#, "selective")
        case "recompute-method": return (["block"], #""block""#, "block")
        case "device": return (["cuda"], #""cuda""#, "cuda")
        case "model-type": return (["bert"], #""bert""#, "bert")
        case "bert-layernorm-order": return (["post"], #""post""#, "post")
        default: break
        }
        switch flag.kind {
        case .integer: return (["3"], "3", "3")
        case .number: return (["0.5"], "0.5", "0.5")
        case .string: return (["abc"], #""abc""#, "abc")
        case .flag: return ([], "true", "true")
        case .words: return (["a", "b"], #"["a", "b"]"#, "[a, b]")
        }
    }

    /// Applies settings without validating (each flag alone would not make a valid run).
    static func apply(_ settings: [(key: String, value: JSONValue)], source: String = "test") throws(TrainingError) -> TrainingConfig {
        var config = TrainingConfig()
        for (key, value) in settings {
            let name = key.replacing("_", with: "-")
            guard let flag = TrainingFlag.named(name) else { throw .config(path: source, reason: "unknown setting \"\(name)\"") }
            try flag.apply(&config, Setting(key: name, value: value, source: source))
        }
        return config
    }

    static func temporaryFile(_ suffix: String, _ text: String) throws -> String {
        let path = "/tmp/megatron-flags-\(UInt32.random(in: 0...UInt32.max))" + suffix
        try AtomicFile.write(Array(text.utf8), to: path)
        return path
    }

    @Test func namesAreUniqueAndEveryPropertyHasOne() {
        let names = TrainingFlag.all.map(\.name)
        #expect(Set(names).count == names.count)
        #expect(TrainingConfig.names == names)
        // Every stored property but the recorded arguments is set by exactly one flag.
        let labels = Mirror(reflecting: TrainingConfig()).children.compactMap(\.label)
            .filter { $0 != "arguments" && $0 != "globalBatchSizeGiven" }.map { $0.lowercased() }
        #expect(Set(labels) == Set(names.map { $0.replacing("-", with: "") }))
    }

    @Test func everyFlagIsReadWithItsTypeFromEverySource() throws {
        let flags = TrainingFlag.all
        var words = [String]()
        for flag in flags { words += ["--" + flag.name] + Self.sample(flag).words }
        let parsed = try TrainingConfig.settings(fromArguments: words)
        #expect(parsed.settings.map(\.key) == flags.map(\.name))
        for (flag, setting) in zip(flags, parsed.settings) {
            switch (flag.kind, setting.value) {
            case (.integer, .number), (.number, .number), (.string, .string), (.flag, .bool(true)), (.words, .array): break
            default: Issue.record("--\(flag.name) (\(flag.kind)) parsed as \(setting.value.typeName)")
            }
        }
        let json = try Self.temporaryFile(".json", "{" + flags.map { "\"\($0.name)\": \(Self.sample($0).json)" }
            .joined(separator: ", ") + "}")
        let yaml = try Self.temporaryFile(".yaml", flags.map { $0.name.replacing("-", with: "_") + ": " + Self.sample($0).yaml }
            .joined(separator: "\n"))
        let fromArguments = try Self.apply(parsed.settings)
        let fromJSON = try Self.apply(try TrainingConfig.settings(fromFile: json))
        let fromYAML = try Self.apply(try TrainingConfig.settings(fromFile: yaml))
        #expect(fromArguments == fromJSON)
        #expect(fromArguments == fromYAML)
        // Each flag sets its own property away from the default.
        for flag in flags {
            let config = try Self.apply(parsed.settings.filter { $0.key == flag.name })
            #expect(config != TrainingConfig(), "--\(flag.name) set nothing")
        }
        #expect(fromArguments.numLayers == 3 && fromArguments.lr == 0.5 && fromArguments.save == "abc")
        #expect(fromArguments.eodMaskLoss && fromArguments.dataPath == ["a", "b"] && fromArguments.globalBatchSize == 3)
    }

    @Test func aValueOfTheWrongTypeIsAnErrorNamingTheFlag() throws {
        for flag in TrainingFlag.all {
            let (wrong, expected): (JSONValue, String) = switch flag.kind {
            case .integer: (.string("3"), "an integer")
            case .number: (.string("0.5"), "a number")
            case .string: (.number(3), "a string")
            case .flag: (.number(1), "true or false")
            case .words: (.bool(true), "a list of strings")
            }
            #expect(throws: TrainingError.config(path: "run.json", reason: "\(flag.name) must be \(expected), got \(wrong.typeName)")) {
                try Self.apply([(flag.name, wrong)], source: "run.json")
            }
        }
        #expect(throws: TrainingError.config(path: "run.json", reason: "num-layers must be an integer, got a number")) {
            try Self.apply([("num-layers", .number(2.5))], source: "run.json")
        }
        // From files: a number where a string belongs, in JSON and YAML alike.
        let yaml = try Self.temporaryFile(".yaml", "save: 100\n")
        #expect(throws: TrainingError.config(path: yaml, reason: "save must be a string, got a number")) {
            try TrainingConfig(settings: [(yaml, try TrainingConfig.settings(fromFile: yaml))])
        }
        let json = try Self.temporaryFile(".json", #"{"tokenizer_file": 7}"#)
        #expect(throws: TrainingError.config(path: json, reason: "tokenizer-file must be a string, got a number")) {
            try TrainingConfig(settings: [(json, try TrainingConfig.settings(fromFile: json))])
        }
        // On the command line every integer or number flag needs a number; a switch takes no value.
        #expect(throws: TrainingError.invalidFlag("--hidden-size", "'wide' is not a number")) {
            try TrainingConfig.settings(fromArguments: ["--hidden-size", "wide"])
        }
        #expect(throws: TrainingError.invalidFlag("--eod-mask-loss", "takes no value")) {
            try TrainingConfig.settings(fromArguments: ["--eod-mask-loss=1"])
        }
        #expect(throws: TrainingError.invalidFlag("--num_layers", "unknown flag")) {
            try TrainingConfig.settings(fromArguments: ["--num_layers", "2"])
        }
    }

    @Test func helpListsEveryFlagWithHelpAndDefault() {
        let text = TrainingFlag.helpText()
        #expect(text.split(separator: "\n").allSatisfy { $0.count <= 78 })
        let flat = text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for flag in TrainingFlag.all {
            #expect(!flag.help.isEmpty && !flag.defaultDescription.isEmpty)
            #expect(flat.contains("\(flag.usage) \(flag.help) (default: \(flag.defaultDescription))"), "--\(flag.name)")
        }
        for group in TrainingFlag.Group.allCases where TrainingFlag.all.contains(where: { $0.group == group }) {
            #expect(text.lowercased().contains(group.rawValue + ":"))
        }
        #expect(TrainingFlag.numLayers.usage == "--num-layers N" && TrainingFlag.eodMaskLoss.usage == "--eod-mask-loss")
    }

    @Test func globalBatchSizeIsRequired() throws {
        let without = RecipeTests.required.filter { $0.key != "global-batch-size" }
        #expect(throws: TrainingError.invalidFlag("--global-batch-size", "is required")) {
            try TrainingConfig(settings: [("run.json", without)])
        }
        #expect(throws: TrainingError.invalidFlag("--global-batch-size", "0 is not a positive multiple of --micro-batch-size 1")) {
            try TrainingConfig(settings: [("run.json", without + [("global-batch-size", .number(0))])])
        }
        #expect(try TrainingConfig(settings: [("run.json", RecipeTests.required)]).globalBatchSize == 4)
    }

    /// Sizes whose products count tokens are refused before they overflow or index more than
    /// the run can: a micro-batch above 2^31 - 1 tokens, a length above 2^50 tokens.
    @Test func tokenCountsThatWouldOverflowAreErrors() throws {
        func config(_ changes: [(key: String, value: JSONValue)]) throws -> TrainingConfig {
            let base = RecipeTests.required.filter { setting in !changes.contains { $0.key == setting.key } }
            return try TrainingConfig(settings: [("run.json", base + changes)])
        }
        #expect(throws: TrainingError.invalidFlag("--micro-batch-size",
                                                 "200000000 samples of --seq-length 16 tokens are more than 2^31 - 1 tokens in one micro-batch")) {
            try config([("micro-batch-size", .number(200_000_000)), ("global-batch-size", .number(200_000_000))])
        }
        #expect(throws: TrainingError.invalidFlag("--train-iters", "8000000000000000 is more than 2^50 tokens at this batch size and sequence length")) {
            try config([("train-iters", .number(8e15))])
        }
        #expect(throws: TrainingError.invalidFlag("--lr-decay-iters", "100000000000000 is more than 2^50 tokens at this batch size and sequence length")) {
            try config([("lr-decay-iters", .number(1e14))])
        }
        // The largest micro-batch that fits 2^31 - 1 tokens is accepted.
        let largest = Int(Int32.max) / 16
        #expect(try config([("micro-batch-size", .number(Double(largest))), ("global-batch-size", .number(Double(largest)))])
            .microBatchSize == largest)
    }

    /// With a ramp-up, the run's length in samples is counted without stepping through every
    /// iteration after the ramp: a long run's count comes at once, and equals the step-by-step one.
    @Test func rampupLengthIsCountedPastTheRamp() throws {
        var settings = RecipeTests.required.filter { $0.key != "train-iters" && $0.key != "global-batch-size" }
        settings += [("global-batch-size", .number(8)), ("rampup-batch-size", .array([.number(2), .number(2), .number(100)]))]
        let short = try TrainingConfig(settings: [("run.json", settings + [("train-iters", .number(50))])])
        var consumed = 0
        let ramp = try #require(try short.rampup())
        for _ in 0..<50 { consumed += ramp.globalBatchSize(consumedSamples: consumed) }
        #expect(try short.totalSamples() == consumed)
        let long = try TrainingConfig(settings: [("run.json", settings + [("train-iters", .number(1e12))])])
        #expect(try long.totalSamples() == consumed + (1_000_000_000_000 - 50) * 8)
    }

    /// One setting given twice in a config file, under either spelling, is an error naming both.
    @Test func aSettingGivenTwiceInAFileIsAnError() throws {
        let path = try Self.temporaryFile(".json", #"{"num_layers": 2, "num-layers": 3}"#)
        #expect(throws: TrainingError.config(path: path, reason: "\"num_layers\" and \"num-layers\" are the same setting, given twice")) {
            try TrainingConfig.settings(fromFile: path)
        }
        let yaml = try Self.temporaryFile(".yaml", "num_layers: 2\nlanguage_model:\n  num_layers: 3\n")
        #expect(throws: TrainingError.self) { try TrainingConfig.settings(fromFile: yaml) }
    }
}
