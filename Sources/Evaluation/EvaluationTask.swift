import FileSupport

/// A document of a task put into lm-evaluation-harness's parts (its task's `doc_to_text`,
/// `doc_to_choice` and `doc_to_target`).
public struct FormattedDocument: Sendable, Equatable {
    /// The question: one text, or for a multiple-input task (WinoGrande) one per choice.
    public var texts: [String]
    /// The answer options (`doc_to_choice`); empty for a last-word task. Their lengths in
    /// characters normalise `acc_norm`.
    public var choices: [String]
    /// The index of the right option (multiple choice), or of the right text (multiple input).
    public var gold: Int
    /// The continuation of a last-word or multiple-input task (`doc_to_target`, with its
    /// leading space where the task has one), or the whole text of a rolling task; unused by
    /// multiple choice.
    public var target: String
    /// A rolling task's normalisers: the document's words and UTF-8 bytes (0 for other tasks).
    public var words = 0
    public var bytes = 0
}

/// One of lm-evaluation-harness's zero- and few-shot tasks (0.4.13), reading the fields of its
/// public dataset as distributed, one JSON object per line.
public struct EvaluationTask: Sendable {
    /// How a document becomes requests and is scored.
    public enum Kind: Sendable {
        /// One continuation after the text (LAMBADA): `acc` is whether it is the greedy one,
        /// `perplexity` is `exp(-mean log-likelihood)`.
        case loglikelihood
        /// `" " + choice` after the text for every choice: `acc`, `acc_norm`.
        case multipleChoice
        /// One continuation `" " + target` after each choice's text (WinoGrande's partial scoring).
        case multipleInput
        /// The target alone, scored whole in disjoint windows of the model's length
        /// (`loglikelihood_rolling`): `word_perplexity`, `byte_perplexity`, `bits_per_byte`.
        case rollingLogLikelihood
    }

    public let name: String
    public let kind: Kind
    let format: @Sendable (JSONDocument) throws(TaskError) -> FormattedDocument

    /// Puts document `document` (line `line` of the file) into its parts.
    public func format(_ document: JSONValue, line: Int) throws(TaskError) -> FormattedDocument {
        try format(JSONDocument(value: document, task: name, line: line))
    }
}

/// A task's document with typed access to its fields; a missing or mistyped field is an error
/// naming the task, the line and the field.
public struct JSONDocument: Sendable {
    let value: JSONValue
    let task: String
    let line: Int

    func field(_ name: String) throws(TaskError) -> JSONValue {
        guard let field = value[name] else { throw .badDocument(task: task, line: line, reason: "no \"\(name)\" field") }
        return field
    }

    func string(_ name: String) throws(TaskError) -> String {
        guard case let .string(text) = try field(name) else { throw wrongType(name, "a string") }
        return text
    }

    func integer(_ name: String) throws(TaskError) -> Int {
        switch try field(name) {
        case let .number(x) where x == x.rounded() && abs(x) < 1e15: return Int(x)
        case let .string(text): if let x = Int(text) { return x }
        default: break
        }
        throw wrongType(name, "an integer")
    }

    func strings(_ name: String) throws(TaskError) -> [String] {
        guard case let .array(values) = try field(name) else { throw wrongType(name, "an array of strings") }
        var result = [String]()
        for value in values {
            guard case let .string(text) = value else { throw wrongType(name, "an array of strings") }
            result.append(text)
        }
        return result
    }

    func object(_ name: String) throws(TaskError) -> JSONDocument {
        let field = try field(name)
        guard case .object = field else { throw wrongType(name, "an object") }
        return JSONDocument(value: field, task: task, line: line)
    }

    func bad(_ reason: String) -> TaskError { .badDocument(task: task, line: line, reason: reason) }

    private func wrongType(_ name: String, _ expected: String) -> TaskError {
        .badDocument(task: task, line: line, reason: "\"\(name)\" must be \(expected)")
    }
}

/// A task that cannot be run as given.
public enum TaskError: Error, CustomStringConvertible, Equatable {
    case unknownTask(String)
    case badDocument(task: String, line: Int, reason: String)
    case badFile(path: String, reason: String)
    case notEnoughFewShotExamples(wanted: Int, available: Int)
    case noFewShotForRollingTask(String)

    public var description: String {
        switch self {
        case let .unknownTask(name):
            "unknown --task \(name) (known: \(TaskCatalog.names.joined(separator: ", ")))"
        case let .badDocument(task, line, reason): "\(task) document \(line): \(reason)"
        case let .badFile(path, reason): "\(path): \(reason)"
        case let .notEnoughFewShotExamples(wanted, available):
            "--num-fewshot \(wanted) needs that many examples besides the one evaluated; --fewshot-data has \(available)"
        case let .noFewShotForRollingTask(name):
            "\(name) scores whole documents by rolling windows and takes no few-shot examples (--num-fewshot 0)"
        }
    }
}
