import ArgumentParser
import Curation

/// `megatron curate filter`: Gopher's and C4's heuristic filters.
extension CurateCommand {
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
            try filters.validate { "--" + $0 }
        }

        /// The filters the flags set.
        var filters: QualityFilters {
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
            return filters
        }

        func run() throws {
            let reportPath = common.report ?? output + ".report.json"
            let report = try FilterStep(filters: filters, threads: common.threads).run(input: input, output: output, reportPath: reportPath,
                                                              textKey: common.jsonKeys[0], malformed: common.malformed)
            CurateCommand.summarize(report, reportPath: reportPath)
        }
    }
}
