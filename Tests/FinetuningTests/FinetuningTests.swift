import FileSupport
import Finetuning
import Models
import Testing
import TestSupport
import Tokenizer
import Training

/// `megatron finetune`'s pieces: the task readers on files in the public datasets' fields
/// (made by `scripts/reference/finetune_task_fixtures.py`), Megatron's sequence layout, and
/// fine-tuning that learns a task's training set.
@Suite struct FinetuningTests {
    static let tasks = repositoryRoot() + "/Tests/FinetuningTests/Fixtures/tasks/"
    static let vocabulary = try! WordPieceTokenizer(vocabularyFile: repositoryRoot() + "/Tests/DataTests/Fixtures/wordpiece/uncased/vocab.txt",
                                                    lowerCase: true)

    @Test func readersTakeThePublicFields() throws {
        let mnli = try FinetuneTask.mnli.examples(path: Self.tasks + "mnli_train.jsonl")
        #expect(mnli.count == 24 && mnli.map(\.label).prefix(6) == [0, 2, 1, 0, 2, 1])  // the 5th line says "contradiction"
        #expect(mnli[1].pairs[0].b == "the air is not a kind of affianced.")
        let boolq = try FinetuneTask.boolq.examples(path: Self.tasks + "boolq_train.jsonl")  // answer: false, then label: 1
        #expect(boolq.count == 24 && boolq[0].label == 0 && boolq[1].label == 1 && boolq[0].pairs[0].a.hasPrefix("is every"))
        let race = try FinetuneTask.race.examples(path: Self.tasks + "race_train.jsonl")
        #expect(race.count == 26 && race.allSatisfy { $0.pairs.count == 4 })
        #expect(race[0].pairs[0].a == "who was art ?" && race[0].label == 0 && race[1].label == 1)
        // The original files' shape: one line, two questions; "who was kind?" has no blank.
        #expect(race[24].pairs[1].a == "who was kind? adder" && race[24].label == 1 && race[25].label == 3)
        #expect(race[25].pairs[3].a == "which one was beggar too?" && race[25].pairs[3].b == "the adder was kind. the beggar was kind too.")
        #expect(try FinetuneTask.qqp.examples(path: Self.tasks + "qqp_valid.jsonl").count == 12)
    }

    /// A bad line is named by file and line; a task's labels are checked.
    @Test func badLinesAreNamed() throws {
        let path = "/tmp/megatron-finetune-\(UInt32.random(in: 0...UInt32.max)).jsonl"
        try Array(#"{"premise": "a", "hypothesis": "b", "label": 0}\#n{"premise": "a", "label": 1}\#n"#.utf8)
            .write(to: path)
        #expect { _ = try FinetuneTask.mnli.examples(path: path) } throws: { "\($0)" == "\(path):2: hypothesis must be a string" }
        try Array(#"{"question1": "a", "question2": "b", "label": 2}"#.utf8).write(to: path)
        #expect { _ = try FinetuneTask.qqp.examples(path: path) } throws: { "\($0)".hasSuffix(":1: label must be an integer in 0..<2") }
        try Array(#"{"article": "a", "question": "q", "options": ["a", "b", "c", "d"], "answer": "E"}"#.utf8).write(to: path)
        #expect { _ = try FinetuneTask.race.examples(path: path) } throws: { "\($0)".hasSuffix(":1: answer must be one of A, B, C, D") }
    }

    /// Megatron's `build_tokens_types_paddings_from_ids`: with and without a second text, cut at the end.
    @Test func sequencesAreLaidOutAsMegatronsTasks() {
        func build(_ a: [Int32], _ b: [Int32]?, _ length: Int) -> ([Int32], [Int32], Int) {
            let built = TaskSequences.build(a: a, b: b, seqLength: length, cls: 101, sep: 102, pad: 0)
            return (built.tokens, built.types, built.length)
        }
        #expect(build([5, 6], [7], 8) == ([101, 5, 6, 102, 7, 102, 0, 0], [0, 0, 0, 0, 1, 1, 0, 0], 6))
        #expect(build([5, 6, 7, 8, 9], [10, 11], 6) == ([101, 5, 6, 7, 8, 102], [0, 0, 0, 0, 0, 1], 6))
        #expect(build([5], nil, 5) == ([101, 5, 102, 0, 0], [0, 0, 0, 0, 0], 3))
        #expect(build(Array(1...10), nil, 4) == ([101, 1, 2, 102], [0, 0, 0, 0], 4))
    }

    /// From a random BERT, fine-tuning learns the training set of a classification task and of
    /// RACE's multiple choice (accuracy measured with the same arg-max the validation uses):
    /// observed 8 -> 16 of 24 (MNLI) and 7 -> 25 of 26 (RACE) in 12 epochs, with the default dropouts.
    @Test(arguments: [FinetuneTask.mnli, .race])
    func fineTuningLearnsTheTrainingSet(task: FinetuneTask) throws {
        let pretrained = try GPTModel(config: GPTConfig(numLayers: 2, hiddenSize: 32, numAttentionHeads: 2, maxPositionEmbeddings: 64,
                                                        vocabSize: Self.vocabulary.vocabularySize, bert: BERTSettings()))
        var settings = FinetuneSettings(task: task)
        settings.seqLength = 32
        settings.microBatchSize = 4
        settings.epochs = 12
        settings.lr = 2e-3
        let examples = TaskSequences.encode(try task.examples(path: Self.tasks + "\(task.rawValue)_train.jsonl"),
                                            vocabulary: Self.vocabulary, seqLength: 32)
        let finetuner = try Finetuner(pretrained: pretrained, settings: settings, trainExamples: examples.count)
        #expect(finetuner.model.params.values("pooler.dense.weight") == pretrained.params.values("pooler.dense.weight"))
        let before = try finetuner.accuracy(examples)
        var losses = [Double]()
        for epoch in 1...settings.epochs { try finetuner.trainEpoch(epoch, examples: examples) { losses.append($0.loss) } }
        let after = try finetuner.accuracy(examples)
        print("finetune \(task.rawValue): training accuracy \(before.correct)/\(before.total) -> \(after.correct)/\(after.total), loss \(losses.first!) -> \(losses.suffix(6).reduce(0, +) / 6)")
        // Chance is a third (a quarter for RACE); both tasks' cues are in the text.
        #expect(after.total == examples.count && after.correct >= before.correct + examples.count / 4)
        #expect(losses.suffix(6).reduce(0, +) / 6 < 0.7 * losses.first!)
    }

    @Test func aGPTCheckpointIsRefused() throws {
        let gpt = try GPTModel(config: GPTConfig(numLayers: 1, hiddenSize: 16, numAttentionHeads: 2, maxPositionEmbeddings: 16, vocabSize: 64))
        #expect { _ = try Finetuner(pretrained: gpt, settings: FinetuneSettings(task: .qqp), trainExamples: 10) } throws: {
            "\($0)".contains("the pretrained checkpoint is a GPT")
        }
    }
}

extension Array where Element == UInt8 {
    func write(to path: String) throws { try AtomicFile.write(self, to: path) }
}
