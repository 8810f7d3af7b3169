import ArgumentParser
import Curation

/// `megatron curate`: the data-curation steps of MT-NLG's corpus (Smith et al. 2022, section 3),
/// each over JSONL with a JSON report beside its output.
struct CurateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "curate",
        abstract: "Curate a JSONL corpus: quality filters and classifier, exact and MinHash near-duplicate removal, downstream-task decontamination.",
        subcommands: [Run.self, Filter.self, TrainClassifier.self, Classify.self, Dedup.self, Decontaminate.self])

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the configured steps over several datasets, preprocess them and print the --data-path blend.",
            discussion: """
            CONFIG is a JSON object: output_dir; datasets, a list of {name, input, weight or \
            epochs}; tokenizer_file (or vocab_file and merge_file); optional json_key, malformed, \
            append_eod (default true), train_tokens (to print each dataset's epochs), threads; and a section \
            per step to run, with the step's flags as keys (underscores for dashes): filter, \
            classifier ({model, threshold or pareto_alpha, seed}), dedup, decontaminate \
            ({task_data, ...}). Order: filter and classifier per dataset, dedup across all \
            (earlier datasets win), decontaminate per dataset, preprocess, blend. Weights and \
            epochs become Megatron's --data-path (weight = epochs x tokens, normalised), written \
            to output_dir/data_path.txt and checked by reading it back as train does. A rerun \
            reuses every step whose inputs and settings are unchanged since it finished.
            """)

        @Argument(help: "The JSON config.") var config: String

        func run() throws {
            let pipeline = try CurationPipeline(configPath: config)
            let summary = try pipeline.run { print($0) }
            print("--data-path \(summary.dataPath)")
        }
    }

    /// Options every step shares.
    struct Common: ParsableArguments {
        @Option(name: .long, parsing: .upToNextOption, help: "JSON keys holding the text (joined by a blank line when several).")
        var jsonKeys: [String] = ["text"]

        @Option(name: .long, help: "What a malformed line does: fail (stop, naming FILE:LINE) or skip (leave it out, in the report).")
        var malformed: MalformedLinePolicy = .fail

        @Option(name: .long, help: "The step's JSON report (default: the first output with .report.json).")
        var report: String?

        @Option(name: .long, help: "Threads (the output keeps the input's order).")
        var threads = 2

        func validate() throws {
            guard threads >= 1, threads <= 256 else { throw ValidationError("--threads must be in 1...256, got \(threads)") }
        }
    }

    /// One line per dataset of what the step kept and removed, then where the report is.
    static func summarize(_ report: CurationReport, reportPath: String) {
        for dataset in report.datasets {
            let input = dataset.first { $0.key == "input" }.flatMap { if case let .string(path) = $0.value { path } else { nil } }
            print((input.map { $0 + ": " } ?? "") + CurationReport.counts(dataset))
        }
        if !report.malformed.isEmpty { print("\(report.malformed.count) malformed lines left out") }
        print("report: \(reportPath)")
    }
}

extension MalformedLinePolicy: ExpressibleByArgument {}
extension MinHashPermutations.Scheme: ExpressibleByArgument {}
