import Dispatch
import FileSupport

/// Settings of `megatron curate dedup`.
public struct DedupOptions: Sendable {
    /// Remove documents whose normalised text equals an earlier one's.
    public var exact = true
    /// Remove near-duplicates by MinHash LSH.
    public var fuzzy = true
    /// Words per shingle.
    public var ngram = 5
    public var permutations = 128
    public var seed: UInt32 = 1
    public var scheme = MinHashPermutations.Scheme.affine32
    /// The Jaccard similarity that makes two documents near-duplicates.
    public var threshold = 0.8
    /// LSH bands and rows (nil: `defaultBands`).
    public var bands: Int?
    public var rows: Int?
    /// Join a candidate pair only when its signatures' Jaccard estimate reaches `threshold`.
    public var verify = true
    public var threads = 2
    public var textKeys = ["text"]
    public var malformed = MalformedLinePolicy.fail

    public init() {}

    /// The banding used when none is given: the one datasketch's optimiser picks for the
    /// threshold with false negatives weighted 0.95 and false positives 0.05 (16 x 8 for 128
    /// permutations at 0.8). Candidates are cheap to verify, misses are final: datasketch's
    /// default weights (9 x 13 here) miss 7% of pairs at Jaccard 0.9.
    public var banding: (bands: Int, rows: Int) {
        if let bands, let rows { return (bands, rows) }
        if let bands { return (bands, permutations / bands) }
        if let rows { return (permutations / rows, rows) }
        return MinHashLSH.optimalBands(threshold: threshold, permutations: permutations,
                                       falsePositiveWeight: 0.05, falseNegativeWeight: 0.95)
    }
}

/// Why a document was removed, and the kept document it duplicates.
public struct DuplicateRecord: Sendable {
    public enum Kind: String, Sendable { case exact, fuzzy }
    public let kind: Kind
    /// (dataset index, line) of the removed document and of the first document of its cluster.
    public let removed: (dataset: Int, line: Int)
    public let keptAs: (dataset: Int, line: Int)
    /// The document it matched (fuzzy: a candidate that passed verification; exact: `keptAs`)
    /// and their signatures' Jaccard estimate (fuzzy only).
    public let matched: (dataset: Int, line: Int)
    public let jaccard: Double?
}

/// Exact and fuzzy deduplication over several JSONL datasets at once, in priority order: of two
/// duplicates, the document of the earlier dataset (and, within one, the earlier line) is kept. Two passes:
/// the first normalises each document, drops exact repeats (SHA-1 of the normalised text) and
/// adds the rest to a `MinHashLSH` (signatures computed on `threads` threads); the second copies
/// the kept lines, byte for byte, to the outputs.
public struct Deduplicator {
    public let options: DedupOptions

    public init(options: DedupOptions) { self.options = options }

    /// Per dataset, which lines (1-based) to remove and why, with LSH `banding` (`options.banding`).
    public func findDuplicates(in paths: [String], banding: (bands: Int, rows: Int), rejected: inout [String]) throws(CurationError)
        -> (removed: [[Int: DuplicateRecord]], documents: [Int]) {
        let permutations = MinHashPermutations(count: options.permutations, seed: options.seed, scheme: options.scheme)
        let (bands, rows) = banding
        guard bands >= 1, rows >= 1, bands * rows <= options.permutations else {
            throw CurationError("--bands \(bands) x --rows \(rows) do not fit in --num-perm \(options.permutations)")
        }
        var lsh = MinHashLSH(permutations: permutations, bands: bands, rows: rows,
                             verificationThreshold: options.verify ? options.threshold : nil)
        var origin = [(dataset: Int, line: Int)]()  // of each document in the LSH
        var seen = [SHA1Key: (dataset: Int, line: Int)]()
        var removed = [[Int: DuplicateRecord]](repeating: [:], count: paths.count)
        var documents = [Int](repeating: 0, count: paths.count)
        let n = options.permutations
        for (dataset, path) in paths.enumerated() {
            let corpus = try CorpusFile(path: path, textKeys: options.textKeys, malformed: options.malformed)
            var rejectedHere = [String]()
            try corpus.forEachBatch(rejected: { rejectedHere.append($0) }) { (batch: [CorpusDocument]) throws(CurationError) in
                documents[dataset] += batch.count
                let (keys, signatures) = signaturesOf(batch, permutations: permutations)
                for (i, document) in batch.enumerated() {
                    let here = (dataset: dataset, line: document.line)
                    if options.exact {
                        if let first = seen[keys[i]] {
                            removed[dataset][document.line] = DuplicateRecord(kind: .exact, removed: here, keptAs: first, matched: first,
                                                                          jaccard: nil)
                            continue
                        }
                        seen[keys[i]] = here
                    }
                    guard options.fuzzy else { continue }
                    let index = origin.count
                    origin.append(here)
                    let kept = signatures.withUnsafeBufferPointer { lsh.add($0.baseAddress! + i * n) }
                    if kept != index, let match = lsh.matches[index] {
                        removed[dataset][document.line] = DuplicateRecord(kind: .fuzzy, removed: here, keptAs: origin[kept],
                                                                          matched: origin[match.document], jaccard: match.jaccard)
                    }
                }
            }
            rejected += rejectedHere
        }
        return (removed, documents)
    }

    /// Each document's exact-duplicate key and MinHash signature (`permutations.count` values
    /// each, empty without fuzzy dedup), computed on `options.threads` threads.
    func signaturesOf(_ batch: [CorpusDocument], permutations: MinHashPermutations) -> ([SHA1Key], [UInt32]) {
        let n = permutations.count, fuzzy = options.fuzzy, ngram = options.ngram
        var keys = [SHA1Key](repeating: SHA1Key(), count: batch.count)
        var signatures = [UInt32](repeating: 0, count: fuzzy ? batch.count * n : 0)
        let workers = max(1, min(options.threads, batch.count))
        keys.withUnsafeMutableBufferPointer { keys in
            signatures.withUnsafeMutableBufferPointer { signatures in
                let shared = SharedOutputs(keys: keys, signatures: signatures)
                DispatchQueue.concurrentPerform(iterations: workers) { worker in
                    for i in (batch.count * worker / workers)..<(batch.count * (worker + 1) / workers) {
                        let text = TextNormalizer.normalizedUTF8(batch[i].text)
                        text.withUnsafeBytes { bytes in
                            shared.keys[i] = SHA1Key(SHA1.digest(bytes))
                            if fuzzy {
                                permutations.signature(into: shared.signatures.baseAddress! + i * n) { body in
                                    WordShingles.forEach(in: bytes, n: ngram, body)
                                }
                            }
                        }
                    }
                }
            }
        }
        return (keys, signatures)
    }
}

/// The buffers the signature threads write, each thread its own documents' slots.
private struct SharedOutputs: @unchecked Sendable {
    let keys: UnsafeMutableBufferPointer<SHA1Key>
    let signatures: UnsafeMutableBufferPointer<UInt32>
}

/// A SHA-1 digest as a dictionary key.
struct SHA1Key: Hashable, Sendable {
    var words: (UInt32, UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0, 0)

    init() {}
    init(_ words: (UInt32, UInt32, UInt32, UInt32, UInt32)) { self.words = words }

    static func == (x: SHA1Key, y: SHA1Key) -> Bool {
        x.words.0 == y.words.0 && x.words.1 == y.words.1 && x.words.2 == y.words.2 && x.words.3 == y.words.3
            && x.words.4 == y.words.4
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
    }
}

extension Deduplicator {
    /// Deduplicates `inputs` (highest priority first) into `outputs` and writes the report to
    /// `reportPath`; returns the report.
    @discardableResult
    public func run(inputs: [String], outputs: [String], reportPath: String) throws(CurationError) -> CurationReport {
        precondition(inputs.count == outputs.count)
        var report = CurationReport(step: "dedup")
        let (bands, rows) = options.banding
        report.settings = [
            ("exact", .bool(options.exact)), ("fuzzy", .bool(options.fuzzy)), ("ngram", .number(Double(options.ngram))),
            ("num_perm", .number(Double(options.permutations))), ("seed", .number(Double(options.seed))),
            ("scheme", .string(options.scheme.rawValue)), ("threshold", .number(options.threshold)),
            ("bands", .number(Double(bands))), ("rows", .number(Double(rows))), ("verify", .bool(options.verify)),
        ]
        var rejected = [String]()
        let (removed, documents) = try findDuplicates(in: inputs, banding: (bands, rows), rejected: &rejected)
        report.malformed = rejected
        var writers = [CorpusWriter]()
        for (dataset, (input, output)) in zip(inputs, outputs).enumerated() {
            let writer = try CorpusWriter(path: output)
            writers.append(writer)
            let corpus = try CorpusFile(path: input, textKeys: options.textKeys, malformed: .skip)
            var exact = 0, fuzzy = 0
            try corpus.forEachBatch(rejected: { _ in }) { (batch: [CorpusDocument]) throws(CurationError) in
                for document in batch {
                    guard let record = removed[dataset][document.line] else {
                        try writer.append(document.raw)
                        continue
                    }
                    if record.kind == .exact { exact += 1 } else { fuzzy += 1 }
                    var extra: [(key: String, value: JSONValue)] = [("duplicate_of", .string("\(inputs[record.keptAs.dataset]):\(record.keptAs.line)"))]
                    if let jaccard = record.jaccard {
                        extra += [("matched", .string("\(inputs[record.matched.dataset]):\(record.matched.line)")),
                                  ("jaccard_estimate", .number(jaccard))]
                    }
                    report.sample(reason: record.kind == .exact ? "exact duplicate" : "near duplicate",
                                  location: "\(input):\(document.line)", text: document.text, extra: extra)
                }
            }
            try writer.finish()
            report.datasets.append([("input", .string(input)), ("output", .string(output)),
                                    ("documents", .number(Double(documents[dataset]))), ("kept", .number(Double(writer.documents))),
                                    ("exact_duplicates", .number(Double(exact))), ("near_duplicates", .number(Double(fuzzy)))])
        }
        try report.write(to: reportPath, committing: writers)
        return report
    }
}
