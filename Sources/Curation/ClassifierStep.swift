extension QualityClassifier {
    /// Trains a classifier on the documents of `positive` (high-quality reference text) against
    /// those of `negative` (raw web text).
    public static func train(positive: [String], negative: [String], textKeys: [String] = ["text"], buckets: Int = 1 << 18,
                             ngrams: Int = 2, c: Double = 1, iterations: Int = 400) throws(CurationError) -> QualityClassifier {
        var model = QualityClassifier(buckets: buckets, ngrams: ngrams)
        var examples = [(features: [(Int, Float)], positive: Bool)]()
        for (paths, label) in [(positive, true), (negative, false)] {
            for path in paths {
                try CorpusFile(path: path, textKeys: textKeys).forEachBatch(rejected: { _ in }) { (batch: [CorpusDocument]) throws(CurationError) in
                    for document in batch { examples.append((model.features(document.text), label)) }
                }
            }
        }
        guard examples.contains(where: \.positive), examples.contains(where: { !$0.positive }) else {
            throw CurationError("training needs both positive and negative documents")
        }
        model.train(examples, c: c, iterations: iterations)
        return model
    }

    /// How `classify` keeps documents.
    public enum Selection: Sendable {
        /// Score above the threshold.
        case threshold(Double)
        /// GPT-3's rule: `pareto(alpha) > 1 - score`, numpy's draws from `seed`, one per document.
        case pareto(alpha: Double, seed: UInt32)
    }

    /// Scores every document of `input`, writes the kept ones to `output` as they are, and the
    /// report (counts, mean score of kept and removed, samples) to `reportPath`.
    @discardableResult
    public func classify(input: String, output: String, reportPath: String, selection: Selection, textKeys: [String] = ["text"],
                         malformed: MalformedLinePolicy = .fail, threads: Int = 1) throws(CurationError) -> CurationReport {
        var report = CurationReport(step: "classify")
        switch selection {
        case let .threshold(value): report.settings = [("threshold", .number(value))]
        case let .pareto(alpha, seed): report.settings = [("pareto_alpha", .number(alpha)), ("seed", .number(Double(seed)))]
        }
        report.settings += [("buckets", .number(Double(buckets))), ("ngrams", .number(Double(ngrams)))]
        var sampler: ParetoSampler?
        if case let .pareto(_, seed) = selection { sampler = ParetoSampler(seed: seed) }
        let writer = try CorpusWriter(path: output)
        var documents = 0, keptScores = 0.0, removedScores = 0.0
        var rejected = [String]()
        try CorpusFile(path: input, textKeys: textKeys, malformed: malformed).forEachBatch(rejected: { rejected.append($0) }) {
            (batch: [CorpusDocument]) throws(CurationError) in
            let scores = parallelMap(batch, threads: threads) { [self] document in score(document.text) }
            for (document, score) in zip(batch, scores) {
                documents += 1
                let keeps: Bool
                switch selection {
                case let .threshold(value): keeps = score > value
                case let .pareto(alpha, _): keeps = sampler!.keeps(score: score, alpha: alpha)
                }
                if keeps {
                    keptScores += score
                    try writer.append(document.raw)
                } else {
                    removedScores += score
                    report.sample(reason: "low quality score", location: "\(input):\(document.line)", text: document.text,
                                  extra: [("score", .number(score))])
                }
            }
        }
        report.malformed = rejected
        let kept = writer.documents, removed = documents - kept
        report.datasets = [[("input", .string(input)), ("output", .string(output)), ("documents", .number(Double(documents))),
                            ("kept", .number(Double(kept))), ("removed", .number(Double(removed))),
                            ("mean_score_kept", kept > 0 ? .number(keptScores / Double(kept)) : .null),
                            ("mean_score_removed", removed > 0 ? .number(removedScores / Double(removed)) : .null)]]
        try report.write(to: reportPath, committing: [writer])
        return report
    }
}
