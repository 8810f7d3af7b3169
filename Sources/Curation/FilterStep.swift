/// `megatron curate filter`: each document cleaned (`TextNormalizer.clean`) and kept when it
/// passes the `QualityFilters`; kept lines carry the cleaned text (other fields as they were).
public struct FilterStep {
    public let filters: QualityFilters
    /// Threads cleaning and checking documents (the output keeps the input's order).
    public var threads = 1
    public init(filters: QualityFilters, threads: Int = 1) {
        self.filters = filters
        self.threads = threads
    }

    @discardableResult
    public func run(input: String, output: String, reportPath: String, textKey: String = "text",
                    malformed: MalformedLinePolicy = .fail) throws(CurationError) -> CurationReport {
        var report = CurationReport(step: "filter")
        let f = filters
        report.settings = [
            ("min_words", .number(Double(f.minWords))), ("max_words", .number(Double(f.maxWords))),
            ("min_mean_word_length", .number(f.minMeanWordLength)), ("max_mean_word_length", .number(f.maxMeanWordLength)),
            ("max_symbol_word_ratio", .number(f.maxSymbolWordRatio)), ("max_bullet_lines", .number(f.maxBulletLines)),
            ("max_ellipsis_lines", .number(f.maxEllipsisLines)), ("min_alphabetic_words", .number(f.minAlphabeticWords)),
            ("min_stop_words", .number(Double(f.minStopWords))), ("min_terminal_punctuation_lines", .number(f.minTerminalPunctuationLines)),
            ("max_duplicate_lines", .number(f.maxDuplicateLines)), ("max_duplicate_paragraphs", .number(f.maxDuplicateParagraphs)),
            ("max_duplicate_line_characters", .number(f.maxDuplicateLineCharacters)),
            ("max_duplicate_paragraph_characters", .number(f.maxDuplicateParagraphCharacters)),
        ]
        let corpus = try CorpusFile(path: input, textKeys: [textKey], malformed: malformed)
        let writer = try CorpusWriter(path: output)
        var documents = 0, removedByRule = [String: Int]()
        var rejected = [String]()
        try corpus.forEachBatch(rejected: { rejected.append($0) }) { (batch: [CorpusDocument]) throws(CurationError) in
            let filters = self.filters
            let results = parallelMap(batch, threads: threads) { document -> (String, (rule: String, value: Double)?) in
                let cleaned = TextNormalizer.clean(document.text)
                return (cleaned, filters.firstFailure(cleaned))
            }
            for (document, (cleaned, failure)) in zip(batch, results) {
                documents += 1
                if let failure {
                    removedByRule[failure.rule, default: 0] += 1
                    report.sample(reason: failure.rule, location: "\(input):\(document.line)", text: document.text,
                                  extra: [("value", .number(failure.value))])
                } else if cleaned == document.text {
                    try writer.append(document.raw)
                } else if let line = CorpusFile.replacingText(in: document.raw, key: textKey, with: cleaned) {
                    try writer.append(line)
                } else {
                    throw CurationError("\(input):\(document.line): cannot rewrite the line")
                }
            }
        }
        report.malformed = rejected
        report.datasets = [[("input", .string(input)), ("output", .string(output)), ("documents", .number(Double(documents))),
                            ("kept", .number(Double(writer.documents)))]
                           + removedByRule.sorted { $0.key < $1.key }.map { ("removed: " + $0.key, .number(Double($0.value))) }]
        try report.write(to: reportPath, committing: [writer])
        return report
    }
}
