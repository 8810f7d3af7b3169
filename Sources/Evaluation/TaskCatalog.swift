import FileSupport

/// The tasks `megatron evaluate --task` knows, each building exactly the prompts and choices of
/// lm-evaluation-harness's task of the same name (0.4.13) from the fields of its dataset.
public enum TaskCatalog {
    /// Task names, in help order.
    public static var names: [String] { tasks.map(\.name) }

    /// The task called `name`.
    public static func task(named name: String) throws(TaskError) -> EvaluationTask {
        guard let task = tasks.first(where: { $0.name == name }) else { throw .unknownTask(name) }
        return task
    }

    static let tasks: [EvaluationTask] = [
        EvaluationTask(name: "lambada_openai", kind: .loglikelihood) { doc throws(TaskError) in
            // Jinja: text.split(' ')[:-1]|join(' ') and ' ' + text.split(' ')[-1].
            let words = try doc.string("text").split(separator: " ", omittingEmptySubsequences: false)
            return FormattedDocument(texts: [words.dropLast().joined(separator: " ")], choices: [], gold: 0,
                                     target: " " + words.last!)
        },
        multipleChoice("piqa") { doc throws(TaskError) in
            ("Question: \(try doc.string("goal"))\nAnswer:", [try doc.string("sol1"), try doc.string("sol2")], try doc.integer("label"))
        },
        multipleChoice("hellaswag") { doc throws(TaskError) in
            let context = try doc.string("ctx_a") + " " + PythonText.capitalize(try doc.string("ctx_b"))
            return (HellaSwag.preprocess(try doc.string("activity_label") + ": " + context),
                    try doc.strings("endings").map(HellaSwag.preprocess), try doc.integer("label"))
        },
        multipleChoice("arc_easy", arc),
        multipleChoice("arc_challenge", arc),
        multipleChoice("boolq") { doc throws(TaskError) in
            ("\(try doc.string("passage"))\nQuestion: \(try doc.string("question"))?\nAnswer:", ["no", "yes"], try doc.integer("label"))
        },
        EvaluationTask(name: "winogrande", kind: .multipleInput) { doc throws(TaskError) in
            let sentence = try doc.string("sentence")
            guard let blank = sentence.unicodeScalars.firstIndex(of: "_") else { throw doc.bad("\"sentence\" has no _ blank") }
            let before = String(sentence.unicodeScalars[..<blank])
            let after = String(sentence.unicodeScalars[sentence.unicodeScalars.index(after: blank)...])
            let options = [before + (try doc.string("option1")), before + (try doc.string("option2"))]
            let answer = try doc.string("answer")
            guard let gold = ["1": 0, "2": 1][answer] else { throw doc.bad("\"answer\" must be \"1\" or \"2\", got \(answer)") }
            return FormattedDocument(texts: options, choices: options, gold: gold, target: PythonText.strip(after))
        },
        multipleChoice("wic") { doc throws(TaskError) in
            let first = try doc.string("sentence1")
            let word = try PythonText.slice(first, try doc.integer("start1"), try doc.integer("end1"), doc: doc)
            return ("Sentence 1: \(first)\nSentence 2: \(try doc.string("sentence2"))\nQuestion: Is the word '\(word)' "
                    + "used in the same way in the two sentences above?\nAnswer:", ["no", "yes"], try doc.integer("label"))
        },
        multipleChoice("race", race),
        multipleChoice("anli_r1", anli),
        multipleChoice("anli_r2", anli),
        multipleChoice("anli_r3", anli),
        // HANS is not an lm-eval 0.4.13 task: its premise/hypothesis pairs in the prompt of
        // lm-eval's RTE (GLUE), whose two labels (entailment, not) HANS shares.
        multipleChoice("hans") { doc throws(TaskError) in
            ("\(try doc.string("premise"))\nQuestion: \(try doc.string("hypothesis")) True or False?\nAnswer:", ["True", "False"],
             try doc.integer("label"))
        },
        EvaluationTask(name: "wikitext", kind: .rollingLogLikelihood, format: WikiText.format),
        multipleChoice("multiple_choice") { doc throws(TaskError) in
            (try doc.string("context"), try doc.strings("choices"), try doc.integer("label"))
        },
    ]

    /// A multiple-choice task whose documents give a text, the options and the right one's index.
    static func multipleChoice(_ name: String,
                               _ parts: @escaping @Sendable (JSONDocument) throws(TaskError) -> (String, [String], Int))
        -> EvaluationTask {
        EvaluationTask(name: name, kind: .multipleChoice) { doc throws(TaskError) in
            let (text, choices, gold) = try parts(doc)
            guard !choices.isEmpty else { throw doc.bad("no choices") }
            guard choices.indices.contains(gold) else { throw doc.bad("label \(gold) is not one of the \(choices.count) choices") }
            return FormattedDocument(texts: [text], choices: choices, gold: gold, target: "")
        }
    }

    @Sendable static func arc(_ doc: JSONDocument) throws(TaskError) -> (String, [String], Int) {
        let choices = try doc.object("choices")
        let labels = try choices.strings("label")
        let key = try doc.string("answerKey")
        guard let gold = labels.firstIndex(of: key) else { throw doc.bad("answerKey \(key) is not among the choice labels") }
        let texts = try choices.strings("text")
        guard texts.count == labels.count else {
            throw doc.bad("choices has \(texts.count) texts for \(labels.count) labels")
        }
        return ("Question: \(try doc.string("question"))\nAnswer:", texts, gold)
    }

    /// lm-eval's `race/preprocess_race.py`: the article, every earlier question of the article
    /// answered (a cloze question ending in "  _  ." filled in), then the last question.
    @Sendable static func race(_ doc: JSONDocument) throws(TaskError) -> (String, [String], Int) {
        let problemsText = try doc.string("problems")
        let parsed: JSONValue
        do { parsed = try PythonLiteral.parse(problemsText) } catch { throw doc.bad("\"problems\" is not a Python list: \(error)") }
        guard case let .array(values) = parsed, !values.isEmpty else { throw doc.bad("\"problems\" is an empty list") }
        var problems = [(question: String, options: [String], answer: Int)]()
        for value in values {
            let problem = JSONDocument(value: value, task: doc.task, line: doc.line)
            let letter = try problem.string("answer")
            guard let answer = ["A": 0, "B": 1, "C": 2, "D": 3][letter] else { throw doc.bad("answer \(letter) is not A-D") }
            let options = try problem.strings("options")
            guard options.count >= 4 else { throw doc.bad("a problem has fewer than 4 options") }
            problems.append((try problem.string("question"), options, answer))
        }
        var text = "Article: " + (try doc.string("article")) + "\n\n"
        for problem in problems.dropLast() {
            let question = Array(problem.question.unicodeScalars)
            if question.count >= 6 && String(String.UnicodeScalarView(question.suffix(6))) == "  _  ." {
                text += String(String.UnicodeScalarView(question.dropLast(5))) + problem.options[problem.answer] + "\n"
            } else {
                text += "Question: " + problem.question + "\nAnswer: " + problem.options[problem.answer] + "\n"
            }
        }
        let last = problems[problems.count - 1]
        return (text + last.question, Array(last.options.prefix(4)), last.answer)
    }

    @Sendable static func anli(_ doc: JSONDocument) throws(TaskError) -> (String, [String], Int) {
        ("\(try doc.string("premise"))\nQuestion: \(try doc.string("hypothesis")) True, False, or Neither?\nAnswer:",
         ["True", "Neither", "False"], try doc.integer("label"))
    }
}

/// lm-eval's HellaSwag text clean-up (`hellaswag/utils.py`).
enum HellaSwag {
    static func preprocess(_ text: String) -> String {
        let result = PythonText.removeBracketed(PythonText.replace(PythonText.strip(text), " [title]", ". "))
        return PythonText.replace(result, "  ", " ")
    }
}
