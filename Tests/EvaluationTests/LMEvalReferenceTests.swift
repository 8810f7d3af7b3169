import Evaluation
import FileSupport
import Models
import Testing
import TestSupport
import Tokenizer
import Training

/// `megatron evaluate --task` against lm-evaluation-harness 0.4.13's `hf` model on the same
/// documents, model and tokenizer (fixtures by `scripts/reference/task_fixtures.py`: a random
/// GPT-2 of odd sizes with 128 positions, so that few-shot prompts are cut from the left):
/// every context and continuation string is lm-eval's, every log-likelihood agrees within 2e-4
/// absolute (observed up to 4.9e-5 over sums of up to 12 tokens' log-probabilities of a few nats
/// each: fp32 models on both sides), every greedy flag and prediction, and so every metric, is
/// the same. The random weights (std 0.25) separate the choices by far more than that.
@Suite(.serialized) struct LMEvalReferenceTests {
    static let repository = repositoryRoot()
    static let fixtures = fixturesDirectory()
    static let tokenizer = try! Tokenizer.load(tokenizerFile: repository + "/Tests/DataTests/Fixtures/tokenizer/tokenizer.json")
    static let expected: JSONValue = try! JSONValue.parse(utf8: try MappedFile.read(path: fixtures + "/expected.json"))

    static func evaluate(_ task: String, shots: Int, batchSize: Int, excludingEvaluated: Bool = false) throws -> TaskScore {
        let documents = try TaskFile.read(path: "\(fixtures)/tasks/\(task).jsonl")
        let poolIsEvaluated = task == "lambada_openai" || task == "race"  // no training split: the test file
        let pool = shots == 0 ? [] : poolIsEvaluated ? documents : try TaskFile.read(path: "\(fixtures)/tasks/\(task)_fewshot.jsonl")
        let builder = try TaskPromptBuilder(task: try TaskCatalog.task(named: task), fewShotPool: pool, numFewShot: shots,
                                            seed: 1234, excludesEvaluated: excludingEvaluated)
        var evaluation = TaskEvaluation(builder: builder,
                                        tokenizer: RequestTokenizer(endOfText: tokenizer.endOfDocumentID!) { tokenizer.encode($0) },
                                        scorer: LogLikelihoodScorer(model: try HuggingFaceCheckpoint.read(directory: fixtures + "/hf"),
                                                                    batchSize: batchSize))
        return try evaluation.run(documents)
    }

    @Test(arguments: ["lambada_openai", "piqa", "hellaswag", "arc_easy", "boolq", "winogrande", "wic", "anli_r1", "race", "hans"],
          [0, 2])
    func matchesLMEval(task: String, shots: Int) throws {
        try Self.compare(try Self.evaluate(task, shots: shots, batchSize: 5), Self.expected["\(task)/\(shots)"], "\(task)/\(shots)")
    }

    /// wikitext: the detokenized pages are lm-eval's, each page's rolling log-likelihood (pages of
    /// 100-330 tokens in windows of the model's 128 positions) agrees within 1e-6 relative (observed 1.4e-4
    /// absolute on sums of about -4,000 nats), and
    /// so do the word and byte perplexities.
    @Test func wikitextMatchesLMEval() throws {
        try Self.compare(try Self.evaluate("wikitext", shots: 0, batchSize: 3), Self.expected["wikitext/0"], "wikitext/0")
    }

    /// lm-eval's `fewshot_split` named as the test split: the evaluated document is never its own example.
    @Test func fewShotExamplesCanLeaveTheEvaluatedDocumentOut() throws {
        let score = try Self.evaluate("lambada_openai", shots: 2, batchSize: 3, excludingEvaluated: true)
        try Self.compare(score, Self.expected["lambada_openai/2/excluding"], "lambada_openai/2/excluding")
    }

    static func compare(_ score: TaskScore, _ reference: JSONValue?, _ name: String) throws {
        guard let reference, case let .array(examples)? = reference["examples"] else {
            Issue.record("no reference for \(name)")
            return
        }
        let task = name
        #expect(score.examples.count == examples.count)
        var worst = 0.0
        for (ours, theirs) in zip(score.examples, examples) {
            #expect(ours.prompt.contexts == Self.strings(theirs["contexts"]), "\(task) #\(ours.index) contexts")
            #expect(ours.prompt.continuations == Self.strings(theirs["continuations"]), "\(task) #\(ours.index) continuations")
            guard case let .array(lls)? = theirs["loglikelihoods"], case let .array(greedy)? = theirs["is_greedy"] else { continue }
            #expect(lls.count == ours.results.count)
            for (k, (result, ll)) in zip(ours.results, lls).enumerated() {
                guard case let .number(value) = ll else { continue }
                worst = max(worst, abs(result.logLikelihood - value))
                // Sums of a few tokens: 2e-4 absolute; a rolling page sums hundreds: 1e-6 relative.
                let tolerance = max(2e-4, 1e-6 * abs(value))
                #expect(abs(result.logLikelihood - value) <= tolerance, "\(task) #\(ours.index): \(result.logLikelihood) vs \(value)")
                if greedy.indices.contains(k) { #expect(.bool(result.isGreedy) == greedy[k]) }  // none for a rolling task
            }
        }
        for metric in score.metrics {
            guard case let .number(value)? = reference["metrics"]?[metric.name] else {
                // Tasks whose lm-eval YAML lists acc alone have no acc_norm there; every other metric must be there.
                if metric.name != "acc_norm" { Issue.record("\(task): lm-eval reports no \(metric.name)") }
                continue
            }
            let tolerance = ["acc", "acc_norm"].contains(metric.name) ? 1e-12 : 1e-4 * value
            #expect(abs(metric.value - value) <= tolerance, "\(task) \(metric.name): \(metric.value) vs \(value)")
        }
        print("\(task): worst log-likelihood difference \(worst)")
    }

    /// The batch size changes the padding, not the scores: the same greedy flags, and every
    /// log-likelihood within 1e-6 relative. Not the same bits: the padded shapes change OpenBLAS's
    /// row blocking and the length of the attention's sums (observed 7.9e-8 on an AVX2 EPYC;
    /// earlier CI machines gave identical bits).
    @Test func batchingDoesNotChangeTheScores() throws {
        let one = try Self.evaluate("hellaswag", shots: 2, batchSize: 1).examples.flatMap(\.results)
        let many = try Self.evaluate("hellaswag", shots: 2, batchSize: 7).examples.flatMap(\.results)
        #expect(one.count == many.count && one.map(\.isGreedy) == many.map(\.isGreedy))
        let worst = zip(one, many).map { abs($0.logLikelihood - $1.logLikelihood) / abs($1.logLikelihood) }.max() ?? 1
        print("batch 1 against batch 7: worst log-likelihood difference \(worst)")
        #expect(worst < 1e-6)
    }

    static func strings(_ value: JSONValue?) -> [String] {
        guard case let .array(values)? = value else { return [] }
        return values.compactMap { if case let .string(text) = $0 { text } else { nil } }
    }
}
