import ArgumentParser
import Curation

/// `megatron curate decontaminate`: 13-gram downstream-task decontamination.
extension CurateCommand {
    struct Decontaminate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove downstream-task text (13-gram overlap, as GPT-3 and MT-NLG) from a corpus.",
            discussion: """
            Task texts (every string field of each --task-data JSONL line, or --task-keys) are \
            lower-cased, stripped of punctuation and cut into --ngram word n-grams, as lm-eval's \
            decontamination Janitor does. A document's matching n-grams are removed with --window \
            characters each side and the document split there; pieces of --min-piece-length or \
            fewer characters are dropped, and so is a document with more than --too-dirty-cutoff \
            matches. Each kept piece is a line of its own with the original line's other fields.
            """)

        @Option(name: .long, help: "Input JSONL file.")
        var input: String

        @Option(name: .long, help: "Output JSONL file.")
        var output: String

        @Option(name: .long, parsing: .upToNextOption, help: "Task JSONL files whose text must not be trained on.")
        var taskData: [String]

        @Option(name: .long, parsing: .upToNextOption, help: "Fields of the task lines to use (default: every string field).")
        var taskKeys: [String] = []

        @OptionGroup var common: Common

        @Option(name: .long, help: "Words per n-gram.")
        var ngram = 13

        @Option(name: .long, help: "Characters removed on each side of a match.")
        var window = 200

        @Option(name: .long, help: "Matches above which a document is dropped whole.")
        var tooDirtyCutoff = 10

        @Option(name: .long, help: "Pieces this long or shorter are dropped.")
        var minPieceLength = 200

        @Option(name: .long, help: "Ignore task n-grams found in more task documents than this.")
        var maxTaskFrequency: Int?

        func validate() throws {
            guard !taskData.isEmpty else { throw ValidationError("give the task files with --task-data") }
            guard output != input else { throw ValidationError("--output must differ from --input") }
            guard common.jsonKeys.count == 1 else { throw ValidationError("decontamination rewrites one text field: give one --json-keys") }
            guard ngram >= 1, window >= 0, tooDirtyCutoff >= 0, minPieceLength >= 0 else {
                throw ValidationError("--ngram must be positive and --window, --too-dirty-cutoff, --min-piece-length not negative")
            }
            if let maxTaskFrequency, maxTaskFrequency < 1 { throw ValidationError("--max-task-frequency must be at least 1") }
        }

        func run() throws {
            var settings = Decontaminator.Settings()
            settings.ngram = ngram
            settings.window = window
            settings.tooDirtyCutoff = tooDirtyCutoff
            settings.minimumPieceLength = minPieceLength
            settings.maxTaskFrequency = maxTaskFrequency
            var decontaminator = Decontaminator(settings: settings)
            try decontaminator.register(taskFiles: taskData, keys: taskKeys)
            let reportPath = common.report ?? output + ".report.json"
            let report = try decontaminator.run(input: input, output: output, reportPath: reportPath, textKey: common.jsonKeys[0],
                                                malformed: common.malformed, threads: common.threads)
            CurateCommand.summarize(report, reportPath: reportPath)
        }
    }
}
