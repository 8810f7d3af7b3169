import FileSupport

extension Decontaminator {
    /// Registers every task document of the JSONL files `taskFiles`: the string fields named by
    /// `keys`, or every string field of each line when `keys` is empty.
    public mutating func register(taskFiles: [String], keys: [String]) throws(CurationError) {
        for path in taskFiles {
            let file: MappedFile
            do { file = try MappedFile(path: path) } catch { throw CurationError("\(error)") }
            var lineNumber = 0
            for line in file.bytes.split(separator: 0x0A, omittingEmptySubsequences: false) {
                lineNumber += 1
                guard !line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) else { continue }
                guard case let .object(fields)? = try? JSONValue.parse(utf8: Array(line)) else {
                    throw CurationError("\(path):\(lineNumber): not a JSON object")
                }
                for (key, value) in fields where keys.isEmpty || keys.contains(key) {
                    if case let .string(text) = value { register(task: text) }
                }
            }
        }
        // Nothing to look for would keep every document: a wrong key or an empty task file.
        guard !taskNgrams.isEmpty else {
            throw CurationError("the task data gave no \(settings.ngram)-word n-grams to remove (\(taskFiles.joined(separator: ", "))"
                + (keys.isEmpty ? "" : ", fields \(keys.joined(separator: ", "))") + "): check --task-keys and the files")
        }
    }

    /// Decontaminates `input` into `output` (a contaminated document's pieces each become a line
    /// with the other fields of the original) and writes the report to `reportPath`.
    @discardableResult
    public func run(input: String, output: String, reportPath: String, textKey: String = "text",
                    malformed: MalformedLinePolicy = .fail, threads: Int = 1) throws(CurationError) -> CurationReport {
        var report = CurationReport(step: "decontaminate")
        report.settings = [("ngram", .number(Double(settings.ngram))), ("window", .number(Double(settings.window))),
                           ("too_dirty_cutoff", .number(Double(settings.tooDirtyCutoff))),
                           ("minimum_piece_length", .number(Double(settings.minimumPieceLength))),
                           ("max_task_frequency", settings.maxTaskFrequency.map { .number(Double($0)) } ?? .null),
                           ("task_ngrams", .number(Double(taskNgrams.count)))]
        let corpus = try CorpusFile(path: input, textKeys: [textKey], malformed: malformed)
        let writer = try CorpusWriter(path: output)
        var documents = 0, contaminated = 0, dropped = 0, pieces = 0
        var rejected = [String]()
        try corpus.forEachBatch(rejected: { rejected.append($0) }) { (batch: [CorpusDocument]) throws(CurationError) in
            let outcomes = parallelMap(batch, threads: threads) { [self] document in clean(document.text) }
            for (document, outcome) in zip(batch, outcomes) {
                documents += 1
                let location = "\(input):\(document.line)"
                switch outcome {
                case .clean:
                    try writer.append(document.raw)
                case let .tooDirty(matches):
                    contaminated += 1
                    dropped += 1
                    report.sample(reason: "too many task n-grams", location: location, text: document.text,
                                  extra: [("matches", .number(Double(matches)))])
                case let .split(parts, matches):
                    contaminated += 1
                    if parts.isEmpty { dropped += 1 }
                    for part in parts {
                        guard let line = CorpusFile.replacingText(in: document.raw, key: textKey, with: part) else {
                            throw CurationError("\(location): cannot rewrite the line")
                        }
                        try writer.append(line)
                        pieces += 1
                    }
                    report.sample(reason: "task n-grams removed", location: location, text: document.text,
                                  extra: [("matches", .number(Double(matches))), ("pieces_kept", .number(Double(parts.count)))])
                }
            }
        }
        report.malformed = rejected
        report.datasets = [[("input", .string(input)), ("output", .string(output)), ("documents", .number(Double(documents))),
                            ("contaminated", .number(Double(contaminated))), ("dropped", .number(Double(dropped))),
                            ("pieces_written", .number(Double(pieces))), ("lines_written", .number(Double(writer.documents)))]]
        try report.write(to: reportPath, committing: [writer])
        return report
    }
}
