import Evaluation
import FileSupport
import Models

/// The fine-tuning tasks of `megatron finetune` (Megatron-LM's `tasks/`: GLUE's MNLI and QQP,
/// RACE; and SuperGLUE's BoolQ), each read from its public JSON Lines fields as the Hugging Face
/// datasets distribute them.
public enum FinetuneTask: String, CaseIterable, Sendable {
    /// Natural-language inference: `premise`, `hypothesis`, `label` (0 entailment, 1 neutral,
    /// 2 contradiction; GLUE's `gold_label` words are accepted too).
    case mnli
    /// Quora question pairs: `question1`, `question2`, `label` (1 duplicate).
    case qqp
    /// Reading comprehension, 4 choices: `article`, `question`, `options`, `answer` (A-D); a
    /// line of the original files (`questions`, `options` and `answers` lists) gives several.
    case race
    /// Yes/no questions: `question`, `passage`, and `label` (0/1) or `answer` (false/true).
    case boolq

    /// The head on the pooled first token.
    public var head: BERTHead {
        switch self {
        case .mnli: .classification(classes: 3)
        case .qqp, .boolq: .classification(classes: 2)
        case .race: .multipleChoice(choices: 4)
        }
    }

    /// The examples of one JSON Lines file.
    public func examples(path: String) throws -> [TaskExample] {
        var examples = [TaskExample]()
        for (line, document) in try TaskFile.read(path: path).enumerated() {
            do {
                examples += try self.examples(of: document)
            } catch {
                throw FinetuneError.badExample(path: path, line: line + 1, reason: error.reason)
            }
        }
        return examples
    }

    func examples(of document: JSONValue) throws(FinetuneError) -> [TaskExample] {
        switch self {
        case .mnli:
            return [TaskExample(pairs: [(try text(document, "premise"), try text(document, "hypothesis"))],
                                label: try label(document, words: ["entailment", "neutral", "contradiction"]))]
        case .qqp:
            return [TaskExample(pairs: [(try text(document, "question1"), try text(document, "question2"))],
                                label: try label(document, classes: 2))]
        case .boolq:
            let label: Int
            if case let .bool(answer)? = document["answer"] { label = answer ? 1 : 0 } else { label = try self.label(document, classes: 2) }
            return [TaskExample(pairs: [(try text(document, "question"), try text(document, "passage"))], label: label)]
        case .race:
            let article = try text(document, "article")
            if case let .array(questions)? = document["questions"] {
                guard case let .array(options)? = document["options"], case let .array(answers)? = document["answers"],
                      options.count == questions.count, answers.count == questions.count else {
                    throw .field("questions, options and answers must be lists of the same length")
                }
                return try (0..<questions.count).map { i throws(FinetuneError) in
                    try Self.raceExample(article: article, question: questions[i], options: options[i], answer: answers[i])
                }
            }
            return [try Self.raceExample(article: article, question: document["question"] ?? .null,
                                         options: document["options"] ?? .null, answer: document["answer"] ?? .null)]
        }
    }

    /// One RACE question: each option joined to the question (in place of its blank `_` when
    /// it has one, as Megatron's RACE reader does) against the article.
    static func raceExample(article: String, question: JSONValue, options: JSONValue, answer: JSONValue) throws(FinetuneError) -> TaskExample {
        guard case let .string(question) = question else { throw .field("question must be a string") }
        guard case let .array(options) = options, options.count == 4 else { throw .field("options must be a list of 4 strings") }
        guard case let .string(answer) = answer, answer.count == 1, let index = "ABCD".firstIndex(of: answer.first!) else {
            throw .field("answer must be one of A, B, C, D")
        }
        var pairs = [(String, String?)]()
        for option in options {
            guard case let .string(option) = option else { throw .field("options must be a list of 4 strings") }
            let joined = question.contains("_") ? question.replacing("_", with: option) : question + " " + option
            pairs.append((joined, article))
        }
        return TaskExample(pairs: pairs, label: "ABCD".distance(from: "ABCD".startIndex, to: index))
    }

    private func text(_ document: JSONValue, _ key: String) throws(FinetuneError) -> String {
        guard case let .string(value)? = document[key] else { throw .field("\(key) must be a string") }
        return value
    }

    private func label(_ document: JSONValue, classes: Int) throws(FinetuneError) -> Int {
        guard case let .number(x)? = document["label"], x == x.rounded(), x >= 0, x < Double(classes) else {
            throw .field("label must be an integer in 0..<\(classes)")
        }
        return Int(x)
    }

    private func label(_ document: JSONValue, words: [String]) throws(FinetuneError) -> Int {
        if case let .string(word)? = document["gold_label"] ?? document["label"], let index = words.firstIndex(of: word) {
            return index
        }
        return try label(document, classes: words.count)
    }
}

/// One example: a text pair per sequence (one, or the choices of a question) and its label.
public struct TaskExample: Sendable {
    public var pairs: [(a: String, b: String?)]
    public var label: Int

    public init(pairs: [(String, String?)], label: Int) {
        self.pairs = pairs.map { (a: $0.0, b: $0.1) }
        self.label = label
    }
}

/// A fine-tuning input that cannot be used; the message names the file, line and field.
public enum FinetuneError: Error, CustomStringConvertible {
    case field(String)
    case badExample(path: String, line: Int, reason: String)
    case invalid(String)

    var reason: String {
        switch self {
        case let .field(reason), let .invalid(reason): reason
        case let .badExample(_, _, reason): reason
        }
    }

    public var description: String {
        switch self {
        case let .field(reason), let .invalid(reason): reason
        case let .badExample(path, line, reason): "\(path):\(line): \(reason)"
        }
    }
}
