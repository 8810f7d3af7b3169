#if canImport(FoundationEssentials)
import FoundationEssentials
#endif
import Foundation
import Datasets
import FileSupport
import Tokenizer

/// `megatron curate run CONFIG`: MT-NLG's curation in order — per dataset the filters and the
/// quality classifier, near-duplicate removal across all datasets (earlier datasets win), per
/// dataset the decontamination, then `preprocess` into Megatron's `.bin/.idx` and the blend as a
/// `--data-path` string. The config is a JSON object (unknown keys are errors):
///
///     {"output_dir": "curated", "datasets": [{"name": "web", "input": "web.jsonl", "weight": 0.7},
///                                            {"name": "books", "input": "books.jsonl", "epochs": 2}],
///      "tokenizer_file": "tokenizer.json", "append_eod": true, "train_tokens": 100000000,
///      "filter": {"min_words": 20}, "classifier": {"model": "m.json", "threshold": 0.5},
///      "dedup": {"threshold": 0.8}, "decontaminate": {"task_data": ["lambada.jsonl"]}}
///
/// A step section left out is not run. Every step writes its output and report atomically, so a
/// run that stops leaves each file whole or absent; a rerun starts over.
public struct CurationPipeline {
    public struct Dataset {
        public var name: String
        public var input: String
        public var weight: Double?
        public var epochs: Double?
    }

    public var outputDirectory: String
    public var datasets: [Dataset]
    public var textKey = "text"
    public var malformed = MalformedLinePolicy.fail
    public var filters: QualityFilters?
    public var classifier: (model: QualityClassifier, selection: QualityClassifier.Selection)?
    public var dedup: DedupOptions?
    public var decontaminator: Decontaminator?
    public var tokenizer: Tokenizer
    public var appendEndOfDocument = true
    public var trainTokens: Int?

    /// What the run produced: per dataset the documents after each step, the blend and its check.
    public struct Summary {
        public var lines: [String] = []
        public var blend: Blend?
        public var dataPath: String { blend?.dataPath ?? "" }
    }

    /// Runs every configured step; `log` gets one line per step and dataset.
    public func run(log: (String) -> Void) throws(CurationError) -> Summary {
        do { try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true) } catch {
            throw CurationError("\(outputDirectory): cannot create: \(error.localizedDescription)")
        }
        var current = datasets.map(\.input)
        var summary = Summary()
        func path(_ dataset: Int, _ step: String) -> String { "\(outputDirectory)/\(datasets[dataset].name).\(step).jsonl" }
        func counts(_ report: CurationReport) -> String {
            report.datasets.map { fields in
                fields.compactMap { field -> String? in
                    guard case let .number(x) = field.value, x == x.rounded() else { return nil }
                    return "\(field.key.replacingOccurrences(of: "_", with: " ")) \(Int(x))"
                }.joined(separator: ", ")
            }.joined(separator: "; ")
        }
        if let filters {
            for i in datasets.indices {
                let report = try FilterStep(filters: filters).run(input: current[i], output: path(i, "filtered"),
                                                                  reportPath: path(i, "filtered") + ".report.json",
                                                                  textKey: textKey, malformed: malformed)
                log("filter \(datasets[i].name): \(counts(report))")
                current[i] = path(i, "filtered")
            }
        }
        if let classifier {
            for i in datasets.indices {
                let report = try classifier.model.classify(input: current[i], output: path(i, "classified"),
                                                           reportPath: path(i, "classified") + ".report.json",
                                                           selection: classifier.selection, textKeys: [textKey], malformed: malformed)
                log("classify \(datasets[i].name): \(counts(report))")
                current[i] = path(i, "classified")
            }
        }
        if var options = dedup {
            options.textKeys = [textKey]
            options.malformed = malformed
            let outputs = datasets.indices.map { path($0, "dedup") }
            let report = try Deduplicator(options: options).run(inputs: current, outputs: outputs,
                                                                reportPath: "\(outputDirectory)/dedup.report.json")
            for i in datasets.indices {
                var one = CurationReport(step: "dedup")
                one.datasets = [report.datasets[i]]
                log("dedup \(datasets[i].name): \(counts(one))")
            }
            current = outputs
        }
        if let decontaminator {
            for i in datasets.indices {
                let report = try decontaminator.run(input: current[i], output: path(i, "decontaminated"),
                                                    reportPath: path(i, "decontaminated") + ".report.json", textKey: textKey,
                                                    malformed: malformed)
                log("decontaminate \(datasets[i].name): \(counts(report))")
                current[i] = path(i, "decontaminated")
            }
        }
        var blended = [(name: String, prefix: String, tokens: Int, weight: Double?, epochs: Double?)]()
        for i in datasets.indices {
            var preprocessor = Preprocessor(inputPath: current[i], outputPrefix: "\(outputDirectory)/\(datasets[i].name)")
            preprocessor.jsonKeys = [textKey]
            preprocessor.appendEndOfDocument = appendEndOfDocument
            preprocessor.workers = 2
            let progress: Preprocessor.Progress
            do { progress = try preprocessor.run(tokenizer: tokenizer) } catch { throw CurationError("preprocess \(datasets[i].name): \(error)") }
            log("preprocess \(datasets[i].name): \(progress.documents) documents, \(progress.tokens) tokens -> "
                + preprocessor.datasetPrefix(key: textKey))
            blended.append((datasets[i].name, preprocessor.datasetPrefix(key: textKey), progress.tokens, datasets[i].weight, datasets[i].epochs))
        }
        let blend = try Blend(blended, trainTokens: trainTokens)
        let shares = try blend.checkedShares(samples: 100_000)
        for (entry, share) in zip(blend.entries, shares) {
            let epochs = trainTokens.map { blend.epochs(trainTokens: $0)[blend.entries.firstIndex { $0.name == entry.name }!] }
            log("blend \(entry.name): \(entry.tokens) tokens, weight \(String(format: "%.4f", entry.weight)), "
                + "\(String(format: "%.4f", share)) of samples as train reads it back"
                + (epochs.map { String(format: ", %.2f epochs of %d tokens", $0, trainTokens!) } ?? ""))
        }
        do {
            try AtomicFile.write(Array((blend.dataPath + "\n").utf8), to: "\(outputDirectory)/data_path.txt")
        } catch {
            throw CurationError("\(error)")
        }
        summary.blend = blend
        return summary
    }
}
