import ArgumentParser
import Curation

/// `megatron curate`: the data-curation steps of MT-NLG's corpus (Smith et al. 2022, section 3),
/// each over JSONL with a JSON report beside its output.
struct CurateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "curate",
        abstract: "Curate a JSONL corpus: quality filters and classifier, exact and MinHash near-duplicate removal, downstream-task decontamination.",
        subcommands: [Run.self, Filter.self, TrainClassifier.self, Classify.self, Dedup.self, Decontaminate.self])

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the configured steps over several datasets, preprocess them and print the --data-path blend.",
            discussion: """
            CONFIG is a JSON object: output_dir; datasets, a list of {name, input, weight or \
            epochs}; tokenizer_file (or vocab_file and merge_file); optional json_key, malformed, \
            append_eod (default true), train_tokens (to print each dataset's epochs); and a section \
            per step to run, with the step's flags as keys (underscores for dashes): filter, \
            classifier ({model, threshold or pareto_alpha, seed}), dedup, decontaminate \
            ({task_data, ...}). Order: filter and classifier per dataset, dedup across all \
            (earlier datasets win), decontaminate per dataset, preprocess, blend. Weights and \
            epochs become Megatron's --data-path (weight = epochs x tokens, normalised), written \
            to output_dir/data_path.txt and checked by reading it back as train does.
            """)

        @Argument(help: "The JSON config.") var config: String

        func run() throws {
            let pipeline = try CurationPipeline(configPath: config)
            let summary = try pipeline.run { print($0) }
            print("--data-path \(summary.dataPath)")
        }
    }

    /// Options every step shares.
    struct Common: ParsableArguments {
        @Option(name: .long, parsing: .upToNextOption, help: "JSON keys holding the text (joined by a blank line when several).")
        var jsonKeys: [String] = ["text"]

        @Option(name: .long, help: "What a malformed line does: fail (stop, naming FILE:LINE) or skip (leave it out, in the report).")
        var malformed: MalformedLinePolicy = .fail

        @Option(name: .long, help: "The step's JSON report (default: the first output with .report.json).")
        var report: String?
    }

    struct Filter: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Clean each document's text and keep those that pass Gopher's and C4's heuristic filters.",
            discussion: """
            Cleaning: NFC; on each line, whitespace runs one space; at most one blank line in a row. \
            A document is removed by the first rule it breaks (the report counts each rule and \
            samples the removed documents with the value measured). Thresholds default to Gopher's \
            (Rae et al. 2021); --min-terminal-punctuation-lines is C4's rule as a document fraction \
            (0: off).
            """)

        @Option(name: .long, help: "Input JSONL file.")
        var input: String

        @Option(name: .long, help: "Output JSONL file.")
        var output: String

        @OptionGroup var common: Common

        @Option(name: .long, help: "Fewest words (tokens with a letter or digit).") var minWords = 50
        @Option(name: .long, help: "Most words.") var maxWords = 100_000
        @Option(name: .long, help: "Shortest mean word length.") var minMeanWordLength = 3.0
        @Option(name: .long, help: "Longest mean word length.") var maxMeanWordLength = 10.0
        @Option(name: .long, help: "Most '#' and ellipses per word.") var maxSymbolWordRatio = 0.1
        @Option(name: .long, help: "Largest fraction of lines starting with a bullet.") var maxBulletLines = 0.9
        @Option(name: .long, help: "Largest fraction of lines ending in an ellipsis.") var maxEllipsisLines = 0.3
        @Option(name: .long, help: "Smallest fraction of tokens with a letter.") var minAlphabeticWords = 0.8
        @Option(name: .long, help: "Fewest stop words (the, be, to, of, and, that, have, with).") var minStopWords = 2
        @Option(name: .long, help: "Smallest fraction of lines ending in terminal punctuation (0: off).") var minTerminalPunctuationLines = 0.0
        @Option(name: .long, help: "Largest fraction of duplicate lines.") var maxDuplicateLines = 0.3
        @Option(name: .long, help: "Largest fraction of duplicate paragraphs.") var maxDuplicateParagraphs = 0.3
        @Option(name: .long, help: "Largest fraction of characters in duplicate lines.") var maxDuplicateLineCharacters = 0.2
        @Option(name: .long, help: "Largest fraction of characters in duplicate paragraphs.") var maxDuplicateParagraphCharacters = 0.2

        func validate() throws {
            guard output != input else { throw ValidationError("--output must differ from --input") }
            guard common.jsonKeys.count == 1 else { throw ValidationError("filtering rewrites one text field: give one --json-keys") }
            guard minWords >= 0, maxWords >= minWords, minMeanWordLength <= maxMeanWordLength else {
                throw ValidationError("--min-words/--max-words and --min/--max-mean-word-length must be ordered ranges")
            }
        }

        func run() throws {
            var filters = QualityFilters()
            filters.minWords = minWords
            filters.maxWords = maxWords
            filters.minMeanWordLength = minMeanWordLength
            filters.maxMeanWordLength = maxMeanWordLength
            filters.maxSymbolWordRatio = maxSymbolWordRatio
            filters.maxBulletLines = maxBulletLines
            filters.maxEllipsisLines = maxEllipsisLines
            filters.minAlphabeticWords = minAlphabeticWords
            filters.minStopWords = minStopWords
            filters.minTerminalPunctuationLines = minTerminalPunctuationLines
            filters.maxDuplicateLines = maxDuplicateLines
            filters.maxDuplicateParagraphs = maxDuplicateParagraphs
            filters.maxDuplicateLineCharacters = maxDuplicateLineCharacters
            filters.maxDuplicateParagraphCharacters = maxDuplicateParagraphCharacters
            let reportPath = common.report ?? output + ".report.json"
            let report = try FilterStep(filters: filters).run(input: input, output: output, reportPath: reportPath,
                                                              textKey: common.jsonKeys[0], malformed: common.malformed)
            CurateCommand.summarize(report, reportPath: reportPath)
        }
    }

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
            guard ngrams >= 1, ngrams <= 5, c > 0, iterations >= 1 else {
                throw ValidationError("--ngrams must be in 1...5, --c positive and --iterations at least 1")
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
        @Option(name: .long, help: "Keep documents scoring above this.") var threshold = 0.5
        @Option(name: .long, help: "Keep by GPT-3's Pareto rule with this shape instead of the threshold.") var paretoAlpha: Double?
        @Option(name: .long, help: "Seed of the Pareto draws.") var seed: UInt32 = 1234

        func validate() throws {
            guard output != input else { throw ValidationError("--output must differ from --input") }
            if let paretoAlpha, !(paretoAlpha > 0) { throw ValidationError("--pareto-alpha must be positive") }
        }

        func run() throws {
            let classifier = try QualityClassifier.load(from: model)
            let selection: QualityClassifier.Selection = paretoAlpha.map { .pareto(alpha: $0, seed: seed) } ?? .threshold(threshold)
            let reportPath = common.report ?? output + ".report.json"
            let report = try classifier.classify(input: input, output: output, reportPath: reportPath, selection: selection,
                                                 textKeys: common.jsonKeys, malformed: common.malformed)
            CurateCommand.summarize(report, reportPath: reportPath)
        }
    }

    struct Dedup: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove exact and near duplicates across datasets (MinHash LSH); earlier inputs win.",
            discussion: """
            Documents are compared in normal form (NFC, whitespace runs one space). Exact duplicates \
            share the SHA-1 of that text. Near duplicates: MinHash signatures (datasketch's, for the \
            same --num-perm, --seed and --scheme) over word --ngram shingles, LSH with --bands x \
            --rows (default: the banding datasketch's optimiser picks for --threshold with false \
            negatives weighted 0.95: 16 x 8 for 128 permutations at 0.8), each candidate pair \
            joined when its signatures agree on at least --threshold of their values (unless \
            --no-verify); each cluster keeps its first document in input order. The kept lines are \
            copied byte for byte; every output appears only once complete.
            """)

        @Option(name: .long, parsing: .upToNextOption, help: "Input JSONL files, highest priority first.")
        var input: [String]

        @Option(name: .long, parsing: .upToNextOption, help: "Output JSONL files, one per input.")
        var output: [String]

        @OptionGroup var common: Common

        @Option(name: .long, help: "Jaccard similarity that makes two documents near duplicates.")
        var threshold = 0.8

        @Option(name: .customLong("num-perm"), help: "MinHash permutations.")
        var numPerm = 128

        @Option(name: .long, help: "Words per shingle.")
        var ngram = 5

        @Option(name: .long, help: "LSH bands (default: from --threshold).")
        var bands: Int?

        @Option(name: .long, help: "Signature values per band (default: from --threshold).")
        var rows: Int?

        @Option(name: .long, help: "MinHash permutation seed (datasketch's seed).")
        var seed: UInt32 = 1

        @Option(name: .long, help: "MinHash scheme: affine32 (datasketch 2.x) or legacy (datasketch before 2.0).")
        var scheme: MinHashPermutations.Scheme = .affine32

        @Flag(name: .long, help: "Join every LSH candidate pair without checking its Jaccard estimate.")
        var noVerify = false

        @Flag(name: .long, help: "Only exact duplicates.")
        var exactOnly = false

        @Option(name: .long, help: "Threads computing signatures.")
        var threads = 2

        func validate() throws {
            guard !input.isEmpty, input.count == output.count else {
                throw ValidationError("give one --output per --input (\(input.count) inputs, \(output.count) outputs)")
            }
            guard Set(output).isDisjoint(with: input), Set(output).count == output.count else {
                throw ValidationError("--output files must differ from each other and from the inputs")
            }
            guard threshold > 0, threshold <= 1 else { throw ValidationError("--threshold must be in (0, 1], got \(threshold)") }
            guard numPerm >= 1, numPerm <= 4096 else { throw ValidationError("--num-perm must be in 1...4096, got \(numPerm)") }
            guard ngram >= 1 else { throw ValidationError("--ngram must be at least 1, got \(ngram)") }
            guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
            for (value, flag) in [(bands, "--bands"), (rows, "--rows")] {
                if let value, value < 1 || value > numPerm { throw ValidationError("\(flag) must be in 1...--num-perm, got \(value)") }
            }
        }

        func run() throws {
            var options = DedupOptions()
            options.fuzzy = !exactOnly
            options.threshold = threshold
            options.permutations = numPerm
            options.ngram = ngram
            options.bands = bands
            options.rows = rows
            options.seed = seed
            options.scheme = scheme
            options.verify = !noVerify
            options.threads = threads
            options.textKeys = common.jsonKeys
            options.malformed = common.malformed
            let reportPath = common.report ?? output[0] + ".report.json"
            let report = try Deduplicator(options: options).run(inputs: input, outputs: output, reportPath: reportPath)
            CurateCommand.summarize(report, reportPath: reportPath)
        }
    }

    struct Decontaminate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove downstream-task text (13-gram overlap, as GPT-3 and MT-NLG) from a corpus.",
            discussion: """
            Task texts (every string field of each --task-data JSONL line, or --task-keys) are \
            lower-cased, stripped of punctuation and cut into --ngram word n-grams, as lm-eval's \
            decontamination Janitor does. A document's matching n-grams are removed with --window \
            characters each side and the document split there; pieces of --min-piece-length or \
            fewer characters are dropped, and so is a document with more than --too-dirty-cutoff \
            matches. Each kept piece is a line of its own with the original line's other fields.
            """)

        @Option(name: .long, help: "Input JSONL file.")
        var input: String

        @Option(name: .long, help: "Output JSONL file.")
        var output: String

        @Option(name: .long, parsing: .upToNextOption, help: "Task JSONL files whose text must not be trained on.")
        var taskData: [String]

        @Option(name: .long, parsing: .upToNextOption, help: "Fields of the task lines to use (default: every string field).")
        var taskKeys: [String] = []

        @OptionGroup var common: Common

        @Option(name: .long, help: "Words per n-gram.")
        var ngram = 13

        @Option(name: .long, help: "Characters removed on each side of a match.")
        var window = 200

        @Option(name: .long, help: "Matches above which a document is dropped whole.")
        var tooDirtyCutoff = 10

        @Option(name: .long, help: "Pieces this long or shorter are dropped.")
        var minPieceLength = 200

        @Option(name: .long, help: "Ignore task n-grams found in more task documents than this.")
        var maxTaskFrequency: Int?

        func validate() throws {
            guard !taskData.isEmpty else { throw ValidationError("give the task files with --task-data") }
            guard output != input else { throw ValidationError("--output must differ from --input") }
            guard common.jsonKeys.count == 1 else { throw ValidationError("decontamination rewrites one text field: give one --json-keys") }
            guard ngram >= 1, window >= 0, tooDirtyCutoff >= 0, minPieceLength >= 0 else {
                throw ValidationError("--ngram must be positive and --window, --too-dirty-cutoff, --min-piece-length not negative")
            }
            if let maxTaskFrequency, maxTaskFrequency < 1 { throw ValidationError("--max-task-frequency must be at least 1") }
        }

        func run() throws {
            var settings = Decontaminator.Settings()
            settings.ngram = ngram
            settings.window = window
            settings.tooDirtyCutoff = tooDirtyCutoff
            settings.minimumPieceLength = minPieceLength
            settings.maxTaskFrequency = maxTaskFrequency
            var decontaminator = Decontaminator(settings: settings)
            try decontaminator.register(taskFiles: taskData, keys: taskKeys)
            let reportPath = common.report ?? output + ".report.json"
            let report = try decontaminator.run(input: input, output: output, reportPath: reportPath, textKey: common.jsonKeys[0],
                                                malformed: common.malformed)
            CurateCommand.summarize(report, reportPath: reportPath)
        }
    }

    /// One line per dataset of what the step kept and removed, then where the report is.
    static func summarize(_ report: CurationReport, reportPath: String) {
        for dataset in report.datasets {
            let fields = dataset.compactMap { field -> String? in
                switch field.value {
                case let .number(x):
                    let value = x == x.rounded() ? "\(Int(x))" : fixed(x, 3)
                    return "\(field.key.replacingOccurrences(of: "_", with: " ")) \(value)"
                case let .string(text) where field.key == "input": return text + ":"
                default: return nil
                }
            }
            print(fields.joined(separator: " "))
        }
        if !report.malformed.isEmpty { print("\(report.malformed.count) malformed lines left out") }
        print("report: \(reportPath)")
    }
}

extension MalformedLinePolicy: ExpressibleByArgument {}
extension MinHashPermutations.Scheme: ExpressibleByArgument {}
