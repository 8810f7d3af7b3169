import FileSupport
import Testing
@testable import Training

/// Every integer and number flag of `megatron train` has its valid range in the flag table, and a
/// value outside it (infinite, NaN, beyond Float32, or out of bounds) is one error naming the flag
/// and the value, from the command line and from config files alike.
@Suite struct FlagRangeTests {
    /// A config from the required flags plus command-line `words`.
    static func config(_ words: [String]) throws(TrainingError) -> TrainingConfig {
        let parsed = try TrainingConfig.settings(fromArguments: words)
        return try TrainingConfig(settings: [("run.json", RecipeTests.required), ("command line", parsed.settings)])
    }

    @Test func everyNumericFlagHasARange() {
        for flag in TrainingFlag.all {
            let numeric = flag.kind == .integer || flag.kind == .number
            #expect((flag.range != nil) == numeric, "--\(flag.name)")
        }
    }

    @Test func outOfRangeNumbersAreRefusedNamingTheFlagAndValue() {
        let cases: [([String], TrainingError)] = [
            (["--lr", "inf"], .invalidFlag("--lr", "must be a finite number > 0, got inf")),
            (["--lr", "1e309"], .invalidFlag("--lr", "must be a finite number > 0, got inf")),
            (["--lr", "1e39"], .invalidFlag("--lr", "must be a finite number > 0, got 1e+39 (beyond Float32's largest value 3.4028235e+38)")),
            (["--lr", "-1e-3"], .invalidFlag("--lr", "must be > 0, got -0.001")),
            (["--lr", "0"], .invalidFlag("--lr", "must be > 0, got 0")),
            (["--weight-decay", "nan"], .invalidFlag("--weight-decay", "must be a finite number >= 0, got nan")),
            (["--weight-decay", "-0.1"], .invalidFlag("--weight-decay", "must be >= 0, got -0.1")),
            (["--clip-grad", "nan"], .invalidFlag("--clip-grad", "must be a finite number >= 0, got nan")),
            (["--clip-grad", "-inf"], .invalidFlag("--clip-grad", "must be a finite number >= 0, got -inf")),
            (["--adam-beta1", "2"], .invalidFlag("--adam-beta1", "must be in [0, 1), got 2")),
            (["--adam-beta2", "1"], .invalidFlag("--adam-beta2", "must be in [0, 1), got 1")),
            (["--adam-eps", "0"], .invalidFlag("--adam-eps", "must be > 0, got 0")),
            (["--init-method-std", "0"], .invalidFlag("--init-method-std", "must be > 0, got 0")),
            (["--min-lr", "-1"], .invalidFlag("--min-lr", "must be >= 0, got -1")),
            (["--min-lr", "0.5"], .invalidFlag("--min-lr", "must be in [0, --lr 0.001], got 0.5")),
            (["--seed", "-1"], .invalidFlag("--seed", "must be in [0, 4294967296), got -1")),
            (["--num-layers", "0"], .invalidFlag("--num-layers", "must be >= 1, got 0")),
            (["--eval-iters", "-2"], .invalidFlag("--eval-iters", "must be >= 0, got -2")),
            (["--lr-warmup-iters", "-1"], .invalidFlag("--lr-warmup-iters", "must be >= 0, got -1")),
            (["--lr-decay-iters", "0"], .invalidFlag("--lr-decay-iters", "must be >= 1, got 0")),
        ]
        for (words, error) in cases {
            #expect(throws: error, "\(words)") { try Self.config(words) }
        }
        // Megatron's defaults and ordinary values pass.
        #expect(throws: Never.self) { try Self.config(["--lr", "3e-4", "--min-lr", "3e-5", "--adam-beta2", "0.95", "--clip-grad", "0"]) }
    }

    @Test func configFilesAreCheckedToo() throws {
        let json = try TrainingFlagTests.temporaryFile(".json", #"{"weight_decay": 1e309}"#)
        #expect(throws: TrainingError.invalidFlag("--weight-decay", "must be a finite number >= 0, got inf")) {
            try TrainingConfig(settings: [("run.json", RecipeTests.required), (json, try TrainingConfig.settings(fromFile: json))])
        }
        let yaml = try TrainingFlagTests.temporaryFile(".yaml", "adam_beta1: 1.5\n")
        #expect(throws: TrainingError.invalidFlag("--adam-beta1", "must be in [0, 1), got 1.5")) {
            try TrainingConfig(settings: [("run.json", RecipeTests.required), (yaml, try TrainingConfig.settings(fromFile: yaml))])
        }
        // A ramp-up of infinite sizes is an error, not a crash converting inf to an integer.
        #expect(throws: TrainingError.config(path: "command line", reason: "rampup-batch-size must be three integers: START INCREMENT SAMPLES, got an array")) {
            try Self.config(["--rampup-batch-size", "inf", "2", "16"])
        }
    }

    @Test func otherCommandsCheckTheirOptionsWithTheSameRanges() {
        #expect(throws: TrainingError.invalidFlag("--train-tokens", "must be a finite number > 0, got inf")) {
            try ValueRange.positive.check(.infinity, flag: "--train-tokens")
        }
        #expect(throws: TrainingError.invalidFlag("--seed", "must be in [0, 4294967296), got 4294967296")) {
            try TrainingFlag.seed.range!.check(4_294_967_296, flag: "--seed")
        }
        #expect(throws: Never.self) { try ValueRange.positive.check(300e9, flag: "--train-tokens") }
    }

    @Test func rangesReadAsText() {
        #expect(ValueRange.positive.description == "> 0")
        #expect(ValueRange.unitHalfOpen.description == "in [0, 1)")
        #expect(ValueRange.atLeast(1).description == ">= 1")
        #expect(!ValueRange.finite.contains(.nan) && ValueRange.finite.contains(-3))
    }
}
