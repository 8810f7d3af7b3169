#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Evaluation
import FileSupport
import Models
import Tokenizer

/// `megatron evaluate --task`'s options and run: a checkpoint's zero- or few-shot score on a task
/// file, as lm-evaluation-harness computes it.
struct TaskOptions: ParsableArguments {
    @Option(name: .long, help: "Task to score (see the discussion above).")
    var task: String?

    @Option(name: .long, help: "The task's documents, JSON Lines (with --task).")
    var taskData: String?

    @Option(name: .long, help: "Pool of few-shot examples, JSON Lines (default: --task-data).")
    var fewshotData: String?

    @Flag(name: .long, help: "Never draw the evaluated document as its own example (lm-eval: fewshot_split set to the test split).")
    var fewshotExcludeEvaluated = false

    @Option(name: .long, help: "Few-shot examples before each document.")
    var numFewshot = 0

    @Option(name: .long, help: "Seed of the few-shot sampler (lm-eval's --fewshot_random_seed).")
    var fewshotSeed = 1234

    @Option(name: .long, help: "Score only the first N documents.")
    var limit: Int?

    @Option(name: .long, help: "Write every scored document (prompts, log-likelihoods, predictions) as JSON Lines.")
    var outputFile: String?

    func validate() throws {
        guard task != nil || (taskData == nil && fewshotData == nil && outputFile == nil && limit == nil && numFewshot == 0
                              && !fewshotExcludeEvaluated) else {
            throw ValidationError("--task-data, --fewshot-data, --num-fewshot, --fewshot-exclude-evaluated, --limit and --output-file go with --task")
        }
        if let task {
            guard let known = try? TaskCatalog.task(named: task) else { throw ValidationError(TaskError.unknownTask(task).description) }
            guard known.kind != .rollingLogLikelihood || numFewshot == 0 else {
                throw ValidationError(TaskError.noFewShotForRollingTask(task).description)
            }
            guard taskData != nil else { throw ValidationError("--task needs --task-data FILE.jsonl") }
        }
        guard numFewshot >= 0 else { throw ValidationError("--num-fewshot must not be negative") }
        if let limit { guard limit >= 1 else { throw ValidationError("--limit must be at least 1") } }
    }

    /// Scores the task with `model` and prints the metrics (and writes `--output-file`).
    func run(model: GPTModel, iteration: Int, tokenizer: Tokenizer, batchSize: Int, json: Bool) throws {
        guard let name = task, let taskData else { return }
        guard let endOfText = tokenizer.endOfDocumentID else { throw ValidationError("the tokenizer has no <|endoftext|> token") }
        let evaluationTask = try TaskCatalog.task(named: name)
        let documents = try TaskFile.read(path: taskData)
        let poolPath = fewshotData ?? taskData
        let pool = numFewshot > 0 ? (poolPath == taskData ? documents : try TaskFile.read(path: poolPath)) : []
        if numFewshot > 0 && Self.samePath(poolPath, taskData) && !fewshotExcludeEvaluated {
            writeError("warning: few-shot examples are drawn from the evaluated file, which may draw a document as its own "
                       + "example (as lm-eval does for a task without a training split); --fewshot-exclude-evaluated prevents it\n")
        }
        let builder = try TaskPromptBuilder(task: evaluationTask, fewShotPool: pool, numFewShot: numFewshot, seed: fewshotSeed,
                                            excludesEvaluated: fewshotExcludeEvaluated && Self.samePath(poolPath, taskData))
        var evaluation = TaskEvaluation(builder: builder,
                                        tokenizer: RequestTokenizer(endOfText: endOfText) { tokenizer.encode($0) },
                                        scorer: LogLikelihoodScorer(model: model, batchSize: batchSize))
        let terminal = isatty(2) != 0
        let score = try evaluation.run(documents, limit: limit) { done, total in
            guard terminal else { return }
            let width = 30, filled = width * done / max(total, 1)
            let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
            writeError("\r[\(bar)] \(done)/\(total) requests")
        }
        if terminal { writeError("\r\u{1B}[K") }
        if let outputFile {
            let lines = score.examples.map { $0.json.serialized + "\n" }.joined()
            try AtomicFile.write(Array(lines.utf8), to: outputFile)
        }
        if json {
            print(score.json.serialized)
        } else {
            let metrics = score.metrics.map { metric in
                "\(metric.name) \(fixed(metric.value, 4))" + (metric.standardError.map { " ± \(fixed($0, 4))" } ?? "")
            }
            print("checkpoint iteration \(iteration): \(name), \(numFewshot)-shot, \(score.examples.count) documents: "
                  + metrics.joined(separator: ", "))
        }
    }

    static func samePath(_ a: String, _ b: String) -> Bool {
        guard let x = realpath(a, nil), let y = realpath(b, nil) else { return a == b }
        defer { free(x); free(y) }
        return String(cString: x) == String(cString: y)
    }
}
