#if canImport(FoundationEssentials)
import FoundationEssentials
#endif
import Foundation

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
        let tokens = text.split(whereSeparator: { $0.unicodeScalars.allSatisfy(TextNormalizer.isSpace) }).map(String.init)
        let words = tokens.filter { $0.unicodeScalars.contains { $0.properties.isAlphabetic || $0.properties.numericType != nil } }
        func fail(_ rule: String, _ value: Double) -> (String, Double) { (rule, value) }
        if words.count < minWords || words.count > maxWords { return fail("word count", Double(words.count)) }
        let meanLength = Double(words.reduce(0) { $0 + $1.count }) / Double(words.count)
        if meanLength < minMeanWordLength || meanLength > maxMeanWordLength { return fail("mean word length", meanLength) }
        let symbols = Double(count("#", in: text) + count("...", in: text) + count("\u{2026}", in: text)) / Double(words.count)
        if symbols > maxSymbolWordRatio { return fail("symbol to word ratio", symbols) }
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if !lines.isEmpty {
            let bullets = Double(lines.filter { line in ["\u{2022}", "-", "*", "\u{2023}", "\u{2043}", "\u{25E6}", "\u{25AA}", "\u{25CF}"].contains { line.hasPrefix($0) } }.count) / Double(lines.count)
            if bullets > maxBulletLines { return fail("bullet lines", bullets) }
            let ellipses = Double(lines.filter { $0.hasSuffix("...") || $0.hasSuffix("\u{2026}") }.count) / Double(lines.count)
            if ellipses > maxEllipsisLines { return fail("ellipsis lines", ellipses) }
            let terminal = Double(lines.filter { line in [".", "!", "?", "\"", "'", "\u{201D}"].contains { line.hasSuffix($0) } }.count) / Double(lines.count)
            if terminal < minTerminalPunctuationLines { return fail("lines ending in punctuation", terminal) }
        }
        let alphabetic = Double(tokens.filter { $0.unicodeScalars.contains { $0.properties.isAlphabetic } }.count) / Double(max(1, tokens.count))
        if alphabetic < minAlphabeticWords { return fail("alphabetic words", alphabetic) }
        let stops: Set<String> = ["the", "be", "to", "of", "and", "that", "have", "with"]
        let stopCount = tokens.filter { stops.contains($0.lowercased()) }.count
        if stopCount < minStopWords { return fail("stop words", Double(stopCount)) }
        return repetitionFailure(text, lines: lines, words: tokens)
    }

    /// Gopher's repetition rules.
    func repetitionFailure(_ text: String, lines: [String], words: [String]) -> (rule: String, value: Double)? {
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
        let totalCharacters = Double(max(1, words.reduce(0) { $0 + $1.count }))
        for n in maxTopNgramCharacters.keys.sorted() where words.count >= n {
            var counts = [String: Int]()
            for i in 0...(words.count - n) { counts[words[i..<(i + n)].joined(separator: " "), default: 0] += 1 }
            guard let top = counts.max(by: { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }), top.value > 1 else { continue }
            let fraction = Double(top.value * top.key.split(separator: " ").reduce(0) { $0 + $1.count }) / totalCharacters
            if fraction > maxTopNgramCharacters[n]! { return ("top \(n)-gram characters", fraction) }
        }
        for n in maxDuplicateNgramCharacters.keys.sorted() where words.count >= n {
            var first = [String: Int](), covered = [Bool](repeating: false, count: words.count)
            for i in 0...(words.count - n) {
                let ngram = words[i..<(i + n)].joined(separator: " ")
                if let earlier = first[ngram] {
                    for j in earlier..<(earlier + n) { covered[j] = true }
                    for j in i..<(i + n) { covered[j] = true }
                } else {
                    first[ngram] = i
                }
            }
            let duplicated = Double(zip(words, covered).filter(\.1).reduce(0) { $0 + $1.0.count }) / totalCharacters
            if duplicated > maxDuplicateNgramCharacters[n]! { return ("duplicate \(n)-gram characters", duplicated) }
        }
        return nil
    }

    private func count(_ pattern: String, in text: String) -> Int {
        text.components(separatedBy: pattern).count - 1
    }
}
