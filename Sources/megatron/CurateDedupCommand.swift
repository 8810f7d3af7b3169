import ArgumentParser
import Curation

/// `megatron curate dedup`: exact and MinHash LSH near-duplicate removal.
extension CurateCommand {
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
            --no-verify); a document that joins an earlier document's cluster (input order) is removed. The kept lines are \
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
            options.threads = common.threads
            options.textKeys = common.jsonKeys
            options.malformed = common.malformed
            let reportPath = common.report ?? output[0] + ".report.json"
            let report = try Deduplicator(options: options).run(inputs: input, outputs: output, reportPath: reportPath)
            CurateCommand.summarize(report, reportPath: reportPath)
        }
    }
}
