import ArgumentParser
import Curation

/// `megatron curate train-classifier` and `classify`: the GPT-3 / MT-NLG quality classifier.
extension CurateCommand {
    struct TrainClassifier: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "train-classifier",
            abstract: "Train the quality classifier (logistic regression on hashed word n-grams) on positive vs negative JSONL.",
            discussion: """
            As GPT-3 and MT-NLG: --positive is high-quality reference text (e.g. OpenWebText, \
            Wikipedia, books), --negative raw crawl. Features: normalised, lower-cased words and \
            word pairs hashed into --buckets, counts scaled to unit length; the model minimises \
            scikit-learn's LogisticRegression objective with inverse regularisation --c.
            """)

        @Option(name: .long, parsing: .upToNextOption, help: "High-quality JSONL files.") var positive: [String]
        @Option(name: .long, parsing: .upToNextOption, help: "Raw (low-quality) JSONL files.") var negative: [String]
        @Option(name: .long, help: "The model file (JSON).") var output: String
        @Option(name: .long, parsing: .upToNextOption, help: "JSON keys holding the text.") var jsonKeys: [String] = ["text"]
        @Option(name: .long, help: "Hash buckets of the features.") var buckets = 1 << 18
        @Option(name: .long, help: "Largest word n-gram (1: words, 2: words and pairs).") var ngrams = 2
        @Option(name: .long, help: "Inverse regularisation strength (scikit-learn's C).") var c = 1.0
        @Option(name: .long, help: "Full-batch optimisation steps.") var iterations = 400

        func validate() throws {
            guard !positive.isEmpty, !negative.isEmpty else { throw ValidationError("give --positive and --negative files") }
            guard buckets >= 2, buckets <= 1 << 24 else { throw ValidationError("--buckets must be in 2...16777216, got \(buckets)") }
            guard (1...QualityClassifier.maximumNGrams).contains(ngrams), c > 0, iterations >= 1 else {
                throw ValidationError("--ngrams must be in 1...\(QualityClassifier.maximumNGrams), --c positive and --iterations at least 1")
            }
        }

        func run() throws {
            let model = try QualityClassifier.train(positive: positive, negative: negative, textKeys: jsonKeys, buckets: buckets,
                                                    ngrams: ngrams, c: c, iterations: iterations)
            try model.save(to: output)
            print("wrote \(output)")
        }
    }

    struct Classify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Score documents with a trained quality classifier and keep them by threshold or GPT-3's Pareto sampling.",
            discussion: """
            With --pareto-alpha A a document of score s is kept when numpy's \
            RandomState(--seed).pareto(A) draw for it exceeds 1 - s (GPT-3 used A = 9: most \
            high-scoring documents and a few low-scoring ones); otherwise when s > --threshold.
            """)

        @Option(name: .long, help: "The model from train-classifier.") var model: String
        @Option(name: .long, help: "Input JSONL file.") var input: String
        @Option(name: .long, help: "Output JSONL file.") var output: String
        @OptionGroup var common: Common
        @Option(name: .long, help: "Keep documents scoring above this (default: 0.5).") var threshold: Double?
        @Option(name: .long, help: "Keep by GPT-3's Pareto rule with this shape instead of the threshold.") var paretoAlpha: Double?
        @Option(name: .long, help: "Seed of the Pareto draws.") var seed: UInt32 = 1234

        func validate() throws {
            guard output != input else { throw ValidationError("--output must differ from --input") }
            if let paretoAlpha, !(paretoAlpha > 0 && paretoAlpha.isFinite) {
                throw ValidationError("--pareto-alpha must be a positive finite number, got \(paretoAlpha)")
            }
            if let threshold, !(0...1).contains(threshold) { throw ValidationError("--threshold must be a score in [0, 1], got \(threshold)") }
            if threshold != nil && paretoAlpha != nil {
                throw ValidationError("give --threshold or --pareto-alpha, not both: they are two ways of choosing what to keep")
            }
        }

        func run() throws {
            let classifier = try QualityClassifier.load(from: model)
            let selection: QualityClassifier.Selection = paretoAlpha.map { .pareto(alpha: $0, seed: seed) } ?? .threshold(threshold ?? 0.5)
            let reportPath = common.report ?? output + ".report.json"
            let report = try classifier.classify(input: input, output: output, reportPath: reportPath, selection: selection,
                                                 textKeys: common.jsonKeys, malformed: common.malformed, threads: common.threads)
            CurateCommand.summarize(report, reportPath: reportPath)
        }
    }
}
