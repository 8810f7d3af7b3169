import Accelerator
import Kernels

/// One BERT micro-batch (what Megatron's BERT dataset gives a step): `batch` sequences of
/// `seqLength` tokens, each `[CLS] A [SEP] B [SEP]` followed by padding.
public struct BERTMicroBatch: Sendable {
    public var batch: Int
    public var seqLength: Int
    /// `[batch, seqLength]` token ids, some replaced by `[MASK]` or a random id.
    public var tokens: [Int32]
    /// `[batch, seqLength]` segment ids (0: sentence A, 1: sentence B).
    public var tokenTypes: [Int32]
    /// `[batch]` the number of tokens before each sequence's padding (Megatron's padding mask
    /// holds ones there): only they are attended to.
    public var lengths: [Int32]
    /// `[batch, seqLength]` the original id at each masked position (anything elsewhere).
    public var labels: [Int32]
    /// `[batch, seqLength]` 1 where a token was masked (the masked-LM loss is its masked mean).
    public var lossMask: [Float]
    /// `[batch]` the labels of the head on the pooled first token: in pretraining each
    /// sequence's sentence order (1 when the segments were swapped, 0 in order); in fine-tuning
    /// its class, or for multiple choice the answer of question `q` (sequences `q * choices ..<
    /// (q + 1) * choices`) at index `q`. `CrossEntropy.ignoreIndex`: no loss for it.
    public var sequenceLabels: [Int32]

    public init(batch: Int, seqLength: Int, tokens: [Int32], tokenTypes: [Int32], lengths: [Int32], labels: [Int32],
                lossMask: [Float], sequenceLabels: [Int32]) {
        self.batch = batch
        self.seqLength = seqLength
        self.tokens = tokens
        self.tokenTypes = tokenTypes
        self.lengths = lengths
        self.labels = labels
        self.lossMask = lossMask
        self.sequenceLabels = sequenceLabels
    }
}

/// A BERT micro-batch's losses; the model's gradient is that of their sum.
public struct BERTLosses: Sendable {
    /// Pretraining: the masked-LM cross-entropy over the masked positions (its `mean` is the loss).
    public var maskedLM: CrossEntropy.Totals?
    /// Pretraining: the sentence-order cross-entropy over the sequences (nil without the binary head).
    public var sentenceOrder: CrossEntropy.Totals?
    /// Fine-tuning: the task's cross-entropy over the sequences (or the questions).
    public var task: CrossEntropy.Totals?
    /// The sum of the means (`lm_loss + sop_loss` in pretraining), what the step minimizes.
    public var total: Double { [maskedLM, sentenceOrder, task].reduce(0) { $0 + ($1?.mean ?? 0) } }
}

/// BERT's token-type embedding: row `types[i]` of the table added to row `i` of the embedding.
enum BERTTokenTypes {
    static func forward(_ embedded: UnsafeMutablePointer<Float>, types: UnsafePointer<Int32>, table: UnsafePointer<Float>,
                        rows: Int, channels c: Int) {
        GPU.hostWillRead()
        for i in 0..<rows { Residual.addInPlace(embedded + i * c, table + Int(types[i]) * c, count: c) }
    }

    static func backward(_ dtable: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, types: UnsafePointer<Int32>,
                         rows: Int, channels c: Int) {
        GPU.hostWillRead()
        for i in 0..<rows { Residual.addInPlace(dtable + Int(types[i]) * c, dout + i * c, count: c) }
    }
}

extension GPTModel {
    /// Runs a BERT micro-batch through the whole model and returns both losses, keeping what
    /// `backward` needs (whose gradient is then that of `gradientScale` times their sum). A
    /// training forward passes the run-wide index of the batch's first sample as `dropoutSample`.
    /// Throws, before computing anything, when an input is out of range.
    public func forward(bert input: BERTMicroBatch, dropoutSample: Int? = nil) throws(GPTInputError) -> BERTLosses {
        guard let settings = config.bert else { preconditionFailure("forward(bert:) needs a BERT model (GPTConfig.bert)") }
        precondition(part.isWhole, "the whole-model forward needs the whole model")
        let b = input.batch, t = input.seqLength, n = b * t
        for (field, count, expected) in [("tokens", input.tokens.count, n), ("labels", input.labels.count, n),
                                         ("loss mask", input.lossMask.count, n)]
        where count != expected {
            throw .bertInputCount(field: field, count: count, expected: expected)
        }
        let acts: GPTActivations
        if let existing = activations, existing.batch == b, existing.seqLength == t {
            acts = existing
        } else {
            activations = nil
            acts = makeActivations(chunk: 0, batch: b, seqLength: t)
            activations = acts
        }
        // Unmasked positions need no label: they are ignored rather than checked.
        let targets = zip(input.labels, input.lossMask).map { $1 != 0 ? $0 : CrossEntropy.ignoreIndex }
        try loadBERT(tokenTypes: input.tokenTypes, lengths: input.lengths, sequenceLabels: input.sequenceLabels, into: acts)
        try load(tokens: input.tokens, targets: targets, lossMask: input.lossMask, into: acts)
        acts.dropoutSample = dropoutSample
        let totals = forward(chunk: 0, activations: acts)!
        guard settings.head == .pretraining else { return BERTLosses(task: totals) }
        return BERTLosses(maskedLM: totals, sentenceOrder: acts.bert!.sentenceOrderTotals)
    }

    /// Checks and copies a BERT micro-batch's segment ids (`[batch, seqLength]`), tokens before
    /// the padding (`[batch]`) and sequence labels (`[batch]`, see `BERTMicroBatch`) into `acts`;
    /// every stage needs them (the attention of each layer reads the lengths).
    public func loadBERT(tokenTypes: [Int32], lengths: [Int32], sequenceLabels: [Int32],
                         into acts: GPTActivations) throws(GPTInputError) {
        guard let settings = config.bert, let bert = acts.bert else { preconditionFailure("loadBERT needs a BERT model") }
        let b = acts.batch, t = acts.seqLength
        for (field, count, expected) in [("token types", tokenTypes.count, b * t), ("lengths", lengths.count, b),
                                         ("sequence labels", sequenceLabels.count, b)]
        where count != expected {
            throw .bertInputCount(field: field, count: count, expected: expected)
        }
        func check(_ values: [Int32], _ field: String, _ accepted: String, _ valid: (Int32) -> Bool) throws(GPTInputError) {
            if let index = values.firstIndex(where: { !valid($0) }) {
                throw .bertInputOutOfRange(field: field, index: index, value: Int(values[index]), accepted: accepted)
            }
        }
        if settings.tokenTypes > 0 {
            try check(tokenTypes, "token type", "0..<\(settings.tokenTypes)") { $0 >= 0 && Int($0) < settings.tokenTypes }
        }
        try check(lengths, "sequence length before padding", "1...\(t)") { $0 >= 1 && Int($0) <= t }
        let head = settings.head, questions = b / head.sequencesPerLabel
        guard b % head.sequencesPerLabel == 0 else {
            throw .bertInputCount(field: "sequences (\(head.sequencesPerLabel) choices per question)", count: b,
                                  expected: (questions + 1) * head.sequencesPerLabel)
        }
        try check(Array(sequenceLabels.prefix(questions)), head == .pretraining ? "sentence-order label" : "label",
                  "0..<\(head.classes) or \(CrossEntropy.ignoreIndex)") {
            ($0 >= 0 && Int($0) < head.classes) || $0 == CrossEntropy.ignoreIndex
        }
        MemoryCopy.copy(to: bert.tokenTypes.pointer, from: tokenTypes, count: b * t)
        MemoryCopy.copy(to: bert.keyLengths.pointer, from: lengths, count: b)
        MemoryCopy.copy(to: bert.sequenceLabels.pointer, from: sequenceLabels, count: b)
    }

    /// The sentence-order loss totals of `acts`' last forward (nil for GPT or without the binary head).
    public func sentenceOrderTotals(_ acts: GPTActivations) -> CrossEntropy.Totals? { acts.bert?.sentenceOrderTotals }
}

extension GPTModel {
    /// The pooled head's logits of the last whole-model BERT forward: sentence order `[batch, 2]`,
    /// a task's classes `[batch, classes]`, or multiple choice `[questions, choices]` (empty
    /// without a pooled head).
    public var sequenceLogits: [Float] { activations.map(sequenceLogits(of:)) ?? [] }

    /// The pooled head's logits of `acts`' last forward on the stage that computes the loss (as
    /// `sequenceLogits`).
    public func sequenceLogits(of acts: GPTActivations) -> [Float] {
        guard let bert = acts.bert else { return [] }
        GPU.hostWillRead()
        return bert.sequenceLogits.array
    }
}
