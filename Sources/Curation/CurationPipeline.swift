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
/// A step section left out is not run. Every step writes its output and report atomically, then a
/// stamp beside them; a rerun reuses each step whose stamp still matches.
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
    public var classifier: (model: QualityClassifier, modelPath: String, selection: QualityClassifier.Selection)?
    public var dedup: DedupOptions?
    public var decontaminator: Decontaminator?
    /// The task files the decontaminator registered (part of its step's stamp).
    public var taskFiles: [String] = []
    public var tokenizer: Tokenizer
    /// The tokenizer's files (part of the preprocess step's stamp).
    public var tokenizerFiles: [String] = []
    /// Threads of every step.
    public var threads = 2
    public var appendEndOfDocument = true
    public var trainTokens: Int?

    /// What the run produced: the blend.
    public struct Summary {
        public var blend: Blend?
        public var dataPath: String { blend?.dataPath ?? "" }
    }

    /// Runs every configured step; `log` gets one line per step and dataset. A step whose stamp
    /// (its settings and the size and modification time of its inputs, written beside its output
    /// when it finished) is unchanged and whose outputs exist is reused, so a rerun after a stop
    /// resumes at the first unfinished step.
    public func run(log: (String) -> Void) throws(CurationError) -> Summary {
        do { try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true) } catch {
            throw CurationError("\(outputDirectory): cannot create: \(error.localizedDescription)")
        }
        var current = datasets.map(\.input)
        var summary = Summary()
        func path(_ dataset: Int, _ step: String) -> String { "\(outputDirectory)/\(datasets[dataset].name).\(step).jsonl" }
        /// Runs `body` unless the step's stamp says its outputs are up to date.
        func step(_ name: String, settings: String, inputs: [String], outputs: [String],
                  _ body: () throws(CurationError) -> String) throws(CurationError) {
            let stampPath = outputs[0] + ".stamp"
            let stamp = Self.stamp(name, settings: settings, inputs: inputs)
            if (try? String(contentsOfFile: stampPath, encoding: .utf8)) == stamp,
               outputs.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) {
                log("\(name): reused (inputs and settings unchanged since it finished)")
                return
            }
            try? FileManager.default.removeItem(atPath: stampPath)
            log("\(name): " + (try body()))
            do { try AtomicFile.write(Array(stamp.utf8), to: stampPath) } catch { throw CurationError("\(error)") }
        }
        if let filters {
            for i in datasets.indices {
                try step("filter \(datasets[i].name)", settings: filters.fingerprint + textKey + malformed.rawValue,
                         inputs: [current[i]], outputs: [path(i, "filtered")]) { () throws(CurationError) in
                    Self.counts(try FilterStep(filters: filters, threads: threads).run(
                        input: current[i], output: path(i, "filtered"), reportPath: path(i, "filtered") + ".report.json",
                        textKey: textKey, malformed: malformed))
                }
                current[i] = path(i, "filtered")
            }
        }
        if let classifier {
            for i in datasets.indices {
                try step("classify \(datasets[i].name)", settings: "\(classifier.selection)" + textKey + malformed.rawValue,
                         inputs: [current[i], classifier.modelPath], outputs: [path(i, "classified")]) { () throws(CurationError) in
                    Self.counts(try classifier.model.classify(
                        input: current[i], output: path(i, "classified"), reportPath: path(i, "classified") + ".report.json",
                        selection: classifier.selection, textKeys: [textKey], malformed: malformed, threads: threads))
                }
                current[i] = path(i, "classified")
            }
        }
        if var options = dedup {
            options.textKeys = [textKey]
            options.malformed = malformed
            options.threads = threads
            let outputs = datasets.indices.map { path($0, "dedup") }
            try step("dedup", settings: "\(options)", inputs: current, outputs: outputs) { () throws(CurationError) in
                let report = try Deduplicator(options: options).run(inputs: current, outputs: outputs,
                                                                    reportPath: "\(outputDirectory)/dedup.report.json")
                return zip(datasets, report.datasets).map { "\($0.name): " + CurationReport.counts($1) }.joined(separator: "; ")
            }
            current = outputs
        }
        if let decontaminator {
            for i in datasets.indices {
                try step("decontaminate \(datasets[i].name)", settings: "\(decontaminator.settings)" + textKey + malformed.rawValue,
                         inputs: [current[i]] + taskFiles, outputs: [path(i, "decontaminated")]) { () throws(CurationError) in
                    Self.counts(try decontaminator.run(
                        input: current[i], output: path(i, "decontaminated"), reportPath: path(i, "decontaminated") + ".report.json",
                        textKey: textKey, malformed: malformed, threads: threads))
                }
                current[i] = path(i, "decontaminated")
            }
        }
        var blended = [(name: String, prefix: String, tokens: Int, weight: Double?, epochs: Double?)]()
        for i in datasets.indices {
            var preprocessor = Preprocessor(inputPath: current[i], outputPrefix: "\(outputDirectory)/\(datasets[i].name)")
            preprocessor.jsonKeys = [textKey]
            preprocessor.appendEndOfDocument = appendEndOfDocument
            preprocessor.workers = threads
            let prefix = preprocessor.datasetPrefix(key: textKey)
            try step("preprocess \(datasets[i].name)", settings: "\(appendEndOfDocument)" + textKey,
                     inputs: [current[i]] + tokenizerFiles, outputs: [prefix + ".bin", prefix + ".idx"]) { () throws(CurationError) in
                let progress: Preprocessor.Progress
                do { progress = try preprocessor.run(tokenizer: tokenizer) } catch {
                    throw CurationError("preprocess \(datasets[i].name): \(error)")
                }
                return "\(progress.documents) documents, \(progress.tokens) tokens -> \(prefix)"
            }
            let tokens: Int
            do { tokens = try IndexedDataset(prefix: prefix).sequenceLengths.reduce(0) { $0 + Int($1) } } catch {
                throw CurationError("\(prefix): \(error)")
            }
            blended.append((datasets[i].name, prefix, tokens, datasets[i].weight, datasets[i].epochs))
        }
        let blend = try Blend(blended, trainTokens: trainTokens)
        let shares = try blend.checkedShares(samples: 100_000)
        let epochs = trainTokens.map { blend.epochs(trainTokens: $0) }
        for (index, (entry, share)) in zip(blend.entries, shares).enumerated() {
            log("blend \(entry.name): \(entry.tokens) tokens, weight \(String(format: "%.4f", entry.weight)), "
                + "\(String(format: "%.4f", share)) of samples as train reads it back"
                + (epochs.map { String(format: ", %.2f epochs of %d tokens", $0[index], trainTokens!) } ?? ""))
        }
        do {
            try AtomicFile.write(Array((blend.dataPath + "\n").utf8), to: "\(outputDirectory)/data_path.txt")
        } catch {
            throw CurationError("\(error)")
        }
        summary.blend = blend
        return summary
    }

    /// A report's counts, for the log.
    static func counts(_ report: CurationReport) -> String {
        report.datasets.map(CurationReport.counts).joined(separator: "; ")
    }

    /// A step's name, settings and inputs (path, size and modification time of each).
    static func stamp(_ step: String, settings: String, inputs: [String]) -> String {
        var lines = [step, settings]
        for input in inputs {
            let attributes = try? FileManager.default.attributesOfItem(atPath: input)
            let size = (attributes?[.size] as? NSNumber)?.intValue ?? -1
            let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? -1
            lines.append("\(input) \(size) \(modified)")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
