#if canImport(FoundationEssentials)
import FoundationEssentials
#endif
import Foundation
import FileSupport

/// The heuristic document filters of Gopher (Rae et al. 2021, appendix A.1.1: quality and
/// repetition) and C4 (Raffel et al. 2020: lines ending in terminal punctuation), each with its
/// threshold. A document fails on the first rule it breaks, named with its measured value.
///
/// Words are the text's whitespace-separated tokens; "real" words hold a letter or digit.
/// Lines are split at newlines and paragraphs at blank lines, each ignoring empty ones.
public struct QualityFilters: Sendable, Equatable {
    /// Real words, inclusive (Gopher: 50 to 100,000).
    public var minWords = 50
    public var maxWords = 100_000
    /// Mean characters per real word, inclusive (Gopher: 3 to 10).
    public var minMeanWordLength = 3.0
    public var maxMeanWordLength = 10.0
    /// `#` and ellipses per real word (Gopher: 0.1).
    public var maxSymbolWordRatio = 0.1
    /// Lines starting with a bullet (Gopher: 0.9) and ending with an ellipsis (Gopher: 0.3).
    public var maxBulletLines = 0.9
    public var maxEllipsisLines = 0.3
    /// Tokens holding a letter (Gopher: at least 0.8).
    public var minAlphabeticWords = 0.8
    /// Occurrences of the, be, to, of, and, that, have, with (Gopher: 2).
    public var minStopWords = 2
    /// Lines ending in terminal punctuation (C4 keeps only such lines; here a document-level
    /// fraction; 0 turns it off, the default).
    public var minTerminalPunctuationLines = 0.0
    /// Repetition (Gopher table A1): duplicate lines and paragraphs, as a fraction of the count
    /// and of the characters.
    public var maxDuplicateLines = 0.30
    public var maxDuplicateParagraphs = 0.30
    public var maxDuplicateLineCharacters = 0.20
    public var maxDuplicateParagraphCharacters = 0.20
    /// Characters in the most frequent 2-, 3- and 4-gram.
    public var maxTopNgramCharacters: [Int: Double] = [2: 0.20, 3: 0.18, 4: 0.16]
    /// Characters in words covered by repeated 5- to 10-grams.
    public var maxDuplicateNgramCharacters: [Int: Double] = [5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10]

    public init() {}

    /// Checks that every threshold can be compared with (a number, not NaN; fractions of lines or
    /// words in [0, 1]) and that the ranges are ordered; the error names the setting as `name`
    /// spells it (`--max-bullet-lines` for `curate filter`, `filter.max_bullet_lines` in a config).
    public func validate(name: (String) -> String) throws(CurationError) {
        let fractions: [(String, Double)] = [
            ("max-bullet-lines", maxBulletLines), ("max-ellipsis-lines", maxEllipsisLines),
            ("min-alphabetic-words", minAlphabeticWords), ("min-terminal-punctuation-lines", minTerminalPunctuationLines),
            ("max-duplicate-lines", maxDuplicateLines), ("max-duplicate-paragraphs", maxDuplicateParagraphs),
            ("max-duplicate-line-characters", maxDuplicateLineCharacters),
            ("max-duplicate-paragraph-characters", maxDuplicateParagraphCharacters)]
        for (key, value) in fractions where !(0...1).contains(value) {
            throw CurationError("\(name(key)) must be a fraction in [0, 1], got \(value)")
        }
        for (key, value) in [("min-mean-word-length", minMeanWordLength), ("max-mean-word-length", maxMeanWordLength),
                             ("max-symbol-word-ratio", maxSymbolWordRatio)] where !(value >= 0 && value.isFinite) {
            throw CurationError("\(name(key)) must be a finite number >= 0, got \(value)")
        }
        for (key, value) in [("min-words", minWords), ("max-words", maxWords), ("min-stop-words", minStopWords)] where value < 0 {
            throw CurationError("\(name(key)) must not be negative, got \(value)")
        }
        if minWords > maxWords { throw CurationError("\(name("min-words")) \(minWords) exceeds \(name("max-words")) \(maxWords)") }
        if minMeanWordLength > maxMeanWordLength {
            throw CurationError("\(name("min-mean-word-length")) \(minMeanWordLength) exceeds \(name("max-mean-word-length")) \(maxMeanWordLength)")
        }
    }

    /// Every threshold as text in a fixed order (for a pipeline step's stamp).
    public var fingerprint: String {
        let scalars: [Double] = [Double(minWords), Double(maxWords), minMeanWordLength, maxMeanWordLength, maxSymbolWordRatio,
                                 maxBulletLines, maxEllipsisLines, minAlphabeticWords, Double(minStopWords),
                                 minTerminalPunctuationLines, maxDuplicateLines, maxDuplicateParagraphs,
                                 maxDuplicateLineCharacters, maxDuplicateParagraphCharacters]
        let maps = [maxTopNgramCharacters, maxDuplicateNgramCharacters].map { map in
            map.keys.sorted().map { "\($0):\(map[$0]!)" }.joined(separator: ",")
        }
        return (scalars.map { "\($0)" } + maps).joined(separator: " ")
    }

    /// The rule `text` breaks and the value measured, or nil when it passes them all.
    public func firstFailure(_ text: String) -> (rule: String, value: Double)? {
        var text = text
        return text.withUTF8 { firstFailure(utf8: UnsafeRawBufferPointer($0)) }
    }

    /// One whitespace-separated token of the text: its byte range, characters (code points),
    /// a 64-bit hash of its bytes (its identity in the repetition rules), whether it holds a
    /// letter, and a letter or digit.
    struct Token {
        var range: Range<Int>
        var characters: Int
        var hash: UInt64
        var alphabetic: Bool
        var alphanumeric: Bool
    }

    static func tokens(_ bytes: UnsafeRawBufferPointer) -> [Token] {
        var tokens = [Token]()
        var i = 0
        let n = bytes.count
        while i < n {
            while i < n, isSpaceByte(bytes[i]) { i += 1 }
            guard i < n else { break }
            let start = i
            var hash = FNV1a.offset, characters = 0, alphabetic = false, alphanumeric = false, ascii = true
            while i < n, !isSpaceByte(bytes[i]) {
                let byte = bytes[i]
                hash = FNV1a.step(hash, byte)
                if byte & 0xC0 != 0x80 { characters += 1 }
                if byte >= 0x80 { ascii = false }
                let letter = (byte | 0x20) >= 0x61 && (byte | 0x20) <= 0x7A
                alphabetic = alphabetic || letter
                alphanumeric = alphanumeric || letter || (byte >= 0x30 && byte <= 0x39)
                i += 1
            }
            if !ascii && !alphabetic {  // a letter outside ASCII
                let scalars = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self).unicodeScalars
                alphabetic = scalars.contains { $0.properties.isAlphabetic }
                alphanumeric = alphanumeric || alphabetic || scalars.contains { $0.properties.numericType != nil }
            }
            tokens.append(Token(range: start..<i, characters: characters, hash: hash, alphabetic: alphabetic, alphanumeric: alphanumeric))
        }
        return tokens
    }

    /// Whitespace after `TextNormalizer.clean` (which leaves only spaces and newlines) and ASCII's.
    @inline(__always)
    static func isSpaceByte(_ byte: UInt8) -> Bool { byte == 0x20 || (byte >= 0x09 && byte <= 0x0D) }

    /// The hashes `tokens` gives the lower-cased stop words.
    static let stopWordHashes: Set<UInt64> = Set(["the", "be", "to", "of", "and", "that", "have", "with"].map { FNV1a.hash($0.utf8) })

    func firstFailure(utf8 bytes: UnsafeRawBufferPointer) -> (rule: String, value: Double)? {
        let tokens = Self.tokens(bytes)
        let words = tokens.filter(\.alphanumeric)
        func fail(_ rule: String, _ value: Double) -> (String, Double) { (rule, value) }
        if words.count < minWords || words.count > maxWords { return fail("word count", Double(words.count)) }
        let meanLength = Double(words.reduce(0) { $0 + $1.characters }) / Double(words.count)
        if meanLength < minMeanWordLength || meanLength > maxMeanWordLength { return fail("mean word length", meanLength) }
        var hashes = 0, ellipses = 0, i = 0
        while i < bytes.count {
            if bytes[i] == 0x23 { hashes += 1 }
            if i + 2 < bytes.count, bytes[i] == 0x2E, bytes[i + 1] == 0x2E, bytes[i + 2] == 0x2E { ellipses += 1; i += 3; continue }
            if i + 2 < bytes.count, bytes[i] == 0xE2, bytes[i + 1] == 0x80, bytes[i + 2] == 0xA6 { ellipses += 1; i += 3; continue }
            i += 1
        }
        let symbols = Double(hashes + ellipses) / Double(words.count)
        if symbols > maxSymbolWordRatio { return fail("symbol to word ratio", symbols) }
        let text = String(decoding: bytes, as: UTF8.self)
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if !lines.isEmpty {
            let bullets = Double(lines.filter { line in ["\u{2022}", "-", "*", "\u{2023}", "\u{2043}", "\u{25E6}", "\u{25AA}", "\u{25CF}"].contains { line.hasPrefix($0) } }.count) / Double(lines.count)
            if bullets > maxBulletLines { return fail("bullet lines", bullets) }
            let ellipsisLines = Double(lines.filter { $0.hasSuffix("...") || $0.hasSuffix("\u{2026}") }.count) / Double(lines.count)
            if ellipsisLines > maxEllipsisLines { return fail("ellipsis lines", ellipsisLines) }
            let terminal = Double(lines.filter { line in [".", "!", "?", "\"", "'", "\u{201D}"].contains { line.hasSuffix($0) } }.count) / Double(lines.count)
            if terminal < minTerminalPunctuationLines { return fail("lines ending in punctuation", terminal) }
        }
        let alphabetic = Double(tokens.filter(\.alphabetic).count) / Double(max(1, tokens.count))
        if alphabetic < minAlphabeticWords { return fail("alphabetic words", alphabetic) }
        var stopCount = 0
        for token in tokens where token.range.count <= 4 {
            let lowered = FNV1a.hash(bytes[token.range].lazy.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 })
            if Self.stopWordHashes.contains(lowered) { stopCount += 1 }
        }
        if stopCount < minStopWords { return fail("stop words", Double(stopCount)) }
        return repetitionFailure(text, lines: lines, words: tokens)
    }

    /// Gopher's repetition rules; n-grams are compared by their words' hashes.
    func repetitionFailure(_ text: String, lines: [String], words: [Token]) -> (rule: String, value: Double)? {
        let paragraphs = text.components(separatedBy: "\n\n").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
        for (parts, what, maxCount, maxCharacters) in [(lines, "line", maxDuplicateLines, maxDuplicateLineCharacters),
                                                       (paragraphs, "paragraph", maxDuplicateParagraphs, maxDuplicateParagraphCharacters)]
        where !parts.isEmpty {
            var seen = Set<String>(), duplicates = 0, duplicateCharacters = 0, characters = 0
            for part in parts {
                characters += part.count
                if !seen.insert(part).inserted { duplicates += 1; duplicateCharacters += part.count }
            }
            let fraction = Double(duplicates) / Double(parts.count)
            if fraction > maxCount { return ("duplicate \(what)s", fraction) }
            let characterFraction = Double(duplicateCharacters) / Double(max(1, characters))
            if characterFraction > maxCharacters { return ("duplicate \(what) characters", characterFraction) }
        }
        let totalCharacters = Double(max(1, words.reduce(0) { $0 + $1.characters }))
        /// The hash of the n words from `start`.
        func ngram(_ start: Int, _ n: Int) -> UInt64 {
            var hash: UInt64 = 0x9E37_79B9_7F4A_7C15 &* UInt64(n)
            for word in words[start..<(start + n)] { hash = (hash ^ word.hash) &* 0xFF51_AFD7_ED55_8CCD; hash ^= hash >> 32 }
            return hash
        }
        for n in maxTopNgramCharacters.keys.sorted() where words.count >= n {
            var counts = [UInt64: (count: Int, first: Int)]()
            for i in 0...(words.count - n) {
                let key = ngram(i, n)
                counts[key, default: (0, i)].count += 1
            }
            // The most frequent n-gram (the earliest of equals), if it repeats.
            guard let top = counts.values.max(by: { $0.count < $1.count || ($0.count == $1.count && $0.first > $1.first) }),
                  top.count > 1 else { continue }
            let characters = words[top.first..<(top.first + n)].reduce(0) { $0 + $1.characters }
            let fraction = Double(top.count * characters) / totalCharacters
            if fraction > maxTopNgramCharacters[n]! { return ("top \(n)-gram characters", fraction) }
        }
        for n in maxDuplicateNgramCharacters.keys.sorted() where words.count >= n {
            var first = [UInt64: Int](), covered = [Bool](repeating: false, count: words.count)
            for i in 0...(words.count - n) {
                let key = ngram(i, n)
                if let earlier = first[key] {
                    for j in earlier..<(earlier + n) { covered[j] = true }
                    for j in i..<(i + n) { covered[j] = true }
                } else {
                    first[key] = i
                }
            }
            let duplicated = Double(zip(words, covered).filter(\.1).reduce(0) { $0 + $1.0.characters }) / totalCharacters
            if duplicated > maxDuplicateNgramCharacters[n]! { return ("duplicate \(n)-gram characters", duplicated) }
        }
        return nil
    }
}
