import FileSupport
import Foundation
import Testing
@testable import Curation

/// Each Gopher/C4 rule on a hand-made document that breaks it (and only it), the cleaning of
/// text, and the step over a file.
@Suite struct FilterTests {
    /// A passing document: ordinary prose of about 150 words, no repeated line or phrase.
    static let good = """
        The river rose early that spring, and the farmers along its banks watched the water with some concern.
        Most of them had planted their fields in March, trusting an old saying about the weather.
        By April the meadows near the mill were flooded, and the miller moved his grain to the loft.
        His daughter kept a diary of each day, noting the height of the water against a painted post.
        Neighbours came to read it, because nobody else had thought to measure anything at all.
        When the flood finally receded, the soil it left behind was dark and unusually rich.
        That autumn brought the largest harvest anyone in the valley could remember.
        Years later, the diary was given to the county library, where students still consult it.
        It shows how careful records can turn an ordinary disaster into useful knowledge.
        The painted post stands beside the mill today, its marks faded but still visible to visitors.
        """
    static let goodLines = good.split(separator: "\n").map(String.init)

    @Test func aGoodDocumentPasses() {
        #expect(QualityFilters().firstFailure(Self.good) == nil, "\(String(describing: QualityFilters().firstFailure(Self.good)))")
    }

    @Test func eachRuleNamesItsFailure() {
        let filters = QualityFilters()
        let long = Self.good.split(separator: " ").map { $0.count > 3 ? String($0) + "superlongsuffix" : String($0) }.joined(separator: " ")
        let cases: [(String, String)] = [
            ("The short one.", "word count"),
            (long, "mean word length"),
            (Self.good + " " + String(repeating: "# ", count: 20), "symbol to word ratio"),
            (Self.goodLines.map { "- " + $0 }.joined(separator: "\n"), "bullet lines"),
            (Self.goodLines.map { $0 + "..." }.joined(separator: "\n"), "ellipsis lines"),
            (Self.good + " " + (0..<200).map { "\($0 * 7919)" }.joined(separator: " "), "alphabetic words"),
            (Self.good.replacingOccurrences(of: "the ", with: "a ").replacingOccurrences(of: "The ", with: "A ")
                .replacingOccurrences(of: " and ", with: " or ").replacingOccurrences(of: " of ", with: " in ")
                .replacingOccurrences(of: "That ", with: "This ").replacingOccurrences(of: " to ", with: " for ")
                .replacingOccurrences(of: " with ", with: " by "), "stop words"),
            (Self.good + "\n" + Self.goodLines.prefix(6).joined(separator: "\n"), "duplicate lines"),
        ]
        for (text, rule) in cases {
            #expect(filters.firstFailure(text)?.rule == rule, "\(rule): got \(String(describing: filters.firstFailure(text)))")
        }
        var strict = QualityFilters()
        strict.minTerminalPunctuationLines = 0.99
        #expect(strict.firstFailure(Self.good + "\nand a last line without a full stop")?.rule == "lines ending in punctuation")
        // One long paragraph repeating a 2-gram: the top 2-gram's characters.
        let repeated = (0..<80).map { i in i % 2 == 0 ? "the cat" : "of word\(i)" }.joined(separator: " ")
        #expect(filters.firstFailure(repeated)?.rule == "top 2-gram characters")
        // Repeated 5-grams spread through unique text.
        let spread = (0..<40).map { i in "unique\(i) phrase\(i) with the same five words here" }.joined(separator: " ")
        #expect(filters.firstFailure(spread)?.rule.hasPrefix("top") == true || filters.firstFailure(spread)?.rule.hasPrefix("duplicate") == true)
    }

    @Test func cleaningKeepsLinesAndParagraphs() {
        #expect(TextNormalizer.clean("  Cafe\u{301}\t\tau  lait \r\nsecond\u{a0}line\r\r\n\n\n\nnew paragraph  \n") ==
                "Caf\u{e9} au lait\nsecond line\n\nnew paragraph")
        #expect(TextNormalizer.normalize(" a \n\n b\u{3000}c ") == "a b c")
        // ASCII text takes a byte path; it agrees with the general one.
        let ascii = "  Cafe\t\tau  lait \r\nsecond\u{0B}line\r\r\n\n\n\nnew paragraph  \n"
        #expect(TextNormalizer.clean(ascii) == "Cafe au lait\nsecond line\n\nnew paragraph")
        #expect(TextNormalizer.clean(ascii + "\u{e9}") == "Cafe au lait\nsecond line\n\nnew paragraph\n\u{e9}")
    }

    @Test func filtersAFile() throws {
        let directory = CurationFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let good = Self.good.replacingOccurrences(of: "\n", with: #"\n"#)
        try CurationFiles.writeLines([#"{"text": "\#(good)  ", "id": 1}"#, #"{"text": "too short", "id": 2}"#], to: directory + "/in.jsonl")
        let report = try FilterStep(filters: QualityFilters()).run(input: directory + "/in.jsonl", output: directory + "/out.jsonl",
                                                                  reportPath: directory + "/report.json")
        let lines = try String(contentsOfFile: directory + "/out.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 1 && lines[0].hasSuffix(#".","id":1}"#))
        #expect(report.datasets[0].contains { $0.key == "removed: word count" && $0.value == .number(1) })
    }
}
