import FileSupport
import Tokenizer
/// Downstream-task decontamination as GPT-3 and MT-NLG did it, and as lm-eval's `Janitor`
/// implements it (its python path, code point for code point): task texts are lower-cased (ASCII
/// letters), stripped of ASCII punctuation and cut into word n-grams (13 by default); a training
/// document's n-grams (over its own whitespace-separated words, each n-gram normalised the same
/// way) that match one are removed with `window` characters on each side, the document split
/// there into the pieces longer than `minimumPieceLength`; a document with more than
/// `tooDirtyCutoff` matching n-grams is dropped whole. A document without a match is kept as it
/// is (the janitor's `clean` would also drop a clean document shorter than the minimum piece).
public struct Decontaminator: Sendable {
    public struct Settings: Sendable, Equatable {
        public var ngram = 13
        public var window = 200
        public var tooDirtyCutoff = 10
        public var minimumPieceLength = 200
        /// Leave out task n-grams found in more than this many task documents (nil: keep all).
        public var maxTaskFrequency: Int?
        public init() {}
    }

    public let settings: Settings
    /// The task n-grams, normalised, words joined by single spaces.
    public private(set) var taskNgrams = Set<String>()
    private var hashes = Set<UInt64>()
    private var documentCounts = [String: Int]()

    public init(settings: Settings = Settings()) { self.settings = settings }

    /// Registers one task document's text.
    public mutating func register(task text: String) {
        let words = Self.normalizedWords(text)
        guard words.count >= settings.ngram else { return }
        var ngrams = Set<String>()
        for start in 0...(words.count - settings.ngram) {
            ngrams.insert(words[start..<(start + settings.ngram)].joined(separator: " "))
        }
        for ngram in ngrams {
            documentCounts[ngram, default: 0] += 1
            if let limit = settings.maxTaskFrequency, documentCounts[ngram]! > limit {
                taskNgrams.remove(ngram)
            } else {
                taskNgrams.insert(ngram)
                hashes.insert(Self.hash(ngram.split(separator: " ", omittingEmptySubsequences: false).map(String.init)))
            }
        }
    }

    /// What decontamination does to one document.
    public enum Outcome: Equatable, Sendable {
        /// No task n-gram: the document as it is.
        case clean
        /// The pieces left around the matches (possibly none).
        case split([String], matches: Int)
        /// More matches than the cutoff.
        case tooDirty(matches: Int)
    }

    public func clean(_ document: String) -> Outcome {
        let scalars = Array(document.unicodeScalars)
        // Words: runs of non-space code points, with their first and last index.
        var words = [(start: Int, end: Int)]()
        var i = 0
        while i < scalars.count {
            if scalars[i].isPythonSpace { i += 1; continue }
            let start = i
            while i < scalars.count && !scalars[i].isPythonSpace { i += 1 }
            words.append((start, i - 1))
        }
        let n = settings.ngram
        guard words.count >= n else { return .clean }
        let normalized = words.map { Self.normalize(scalars[$0.start...$0.end]) }
        let wordHashes = normalized.map { Self.wordHash($0) }
        var matches = [(start: Int, end: Int)]()
        for first in 0...(words.count - n) {
            // A word that normalises to nothing leaves two spaces in the joined n-gram, which no
            // task n-gram has.
            guard !normalized[first..<(first + n)].contains(where: \.isEmpty),
                  hashes.contains(Self.combine(wordHashes[first..<(first + n)])),
                  taskNgrams.contains(normalized[first..<(first + n)].joined(separator: " ")) else { continue }
            matches.append((words[first].start, words[first + n - 1].end))
        }
        guard !matches.isEmpty else { return .clean }
        if matches.count > settings.tooDirtyCutoff { return .tooDirty(matches: matches.count) }
        // The janitor's `_split_chunks`, on code point indices.
        var pieces = [String](), splice = 0, end = -1
        for match in matches {
            let start = max(0, match.start - settings.window)
            end = min(scalars.count, match.end + settings.window)
            if start - splice > settings.minimumPieceLength { pieces.append(Self.string(scalars[splice..<start])) }
            splice = end
        }
        if end < scalars.count - settings.minimumPieceLength { pieces.append(Self.string(scalars[(end + 1)...])) }
        return .split(pieces, matches: matches.count)
    }

    /// The janitor's normalisation: ASCII letters lower-cased, ASCII punctuation deleted.
    static func normalize(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var out = String.UnicodeScalarView()
        for scalar in scalars {
            let v = scalar.value
            if v >= 0x41 && v <= 0x5A {
                out.append(Unicode.Scalar(v + 0x20)!)
            } else if v < 0x80 && Self.isPunctuation(UInt8(v)) {
                continue
            } else {
                out.append(scalar)
            }
        }
        return String(out)
    }

    /// Python's `string.punctuation`.
    static func isPunctuation(_ byte: UInt8) -> Bool {
        (0x21...0x2F).contains(byte) || (0x3A...0x40).contains(byte) || (0x5B...0x60).contains(byte) || (0x7B...0x7E).contains(byte)
    }

    /// A task text's normalised words (normalised first, then split, as the janitor registers).
    static func normalizedWords(_ text: String) -> [String] {
        let normalized = normalize(ArraySlice(text.unicodeScalars))
        var words = [String](), current = String.UnicodeScalarView()
        for scalar in normalized.unicodeScalars {
            if scalar.isPythonSpace {
                if !current.isEmpty { words.append(String(current)); current = String.UnicodeScalarView() }
            } else {
                current.append(scalar)
            }
        }
        if !current.isEmpty { words.append(String(current)) }
        return words
    }

    static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }

    /// FNV-1a of a word's UTF-8 bytes.
    static func wordHash(_ word: String) -> UInt64 { FNV1a.hash(word.utf8) }

    /// A word sequence's hash from its words' hashes (order-dependent).
    static func combine<C: Collection>(_ words: C) -> UInt64 where C.Element == UInt64 {
        var hash: UInt64 = 0x9E37_79B9_7F4A_7C15
        for word in words { hash = (hash ^ word) &* 0xFF51_AFD7_ED55_8CCD; hash ^= hash >> 32 }
        return hash
    }

    static func hash(_ words: [String]) -> UInt64 { combine(words.map(wordHash)) }
}
