import Models
import Tokenizer

/// A task example in WordPiece ids: each of its sequences (`[CLS] A [SEP] B [SEP]` and padding)
/// and its label.
public struct EncodedExample: Sendable {
    /// `[sequences, seqLength]` token ids and segment ids.
    public var tokens: [Int32], types: [Int32]
    /// Each sequence's tokens before its padding.
    public var lengths: [Int32]
    public var label: Int32
}

/// Megatron-LM's `tasks/data_utils.build_tokens_types_paddings_from_ids`: `[CLS] A [SEP]`
/// (segment 0), then `B [SEP]` (segment 1); when that is `seqLength` tokens or more it is cut to
/// `seqLength - 1` and a `[SEP]` ends it; then `[PAD]` to the length, with segment id 0 (Megatron
/// writes the pad id there, which is 0 in BERT's vocabularies).
public enum TaskSequences {
    public static func build(a: [Int32], b: [Int32]?, seqLength: Int, cls: Int32, sep: Int32, pad: Int32)
        -> (tokens: [Int32], types: [Int32], length: Int) {
        var tokens = [cls] + a + [sep]
        var types = [Int32](repeating: 0, count: tokens.count)
        if let b {
            tokens += b
            types += [Int32](repeating: 1, count: b.count)
        }
        var trimmed = false
        if tokens.count >= seqLength {
            tokens.removeLast(tokens.count - (seqLength - 1))
            types.removeLast(types.count - (seqLength - 1))
            trimmed = true
        }
        if b != nil || trimmed {
            tokens.append(sep)
            types.append(b == nil ? 0 : 1)
        }
        let length = tokens.count
        tokens += [Int32](repeating: pad, count: seqLength - length)
        types += [Int32](repeating: 0, count: seqLength - length)
        return (tokens, types, length)
    }

    /// `examples` in `vocabulary`'s ids at `seqLength` tokens per sequence.
    public static func encode(_ examples: [TaskExample], vocabulary: WordPieceTokenizer, seqLength: Int) -> [EncodedExample] {
        examples.map { example in
            var encoded = EncodedExample(tokens: [], types: [], lengths: [], label: Int32(example.label))
            for pair in example.pairs {
                let sequence = build(a: vocabulary.encode(pair.a), b: pair.b.map { vocabulary.encode($0) }, seqLength: seqLength,
                                     cls: vocabulary.classID, sep: vocabulary.separatorID, pad: vocabulary.padID)
                encoded.tokens += sequence.tokens
                encoded.types += sequence.types
                encoded.lengths.append(Int32(sequence.length))
            }
            return encoded
        }
    }

    /// The micro-batch of `examples` for a model with `head` (labels per sequence, or per
    /// question of `choices` sequences; no masked-LM labels).
    public static func microBatch(_ examples: ArraySlice<EncodedExample>, head: BERTHead, seqLength: Int) -> BERTMicroBatch {
        let sequences = examples.reduce(0) { $0 + $1.lengths.count }
        var labels = examples.map(\.label)
        labels += [Int32](repeating: -100, count: sequences - labels.count)
        return BERTMicroBatch(batch: sequences, seqLength: seqLength, tokens: examples.flatMap(\.tokens),
                              tokenTypes: examples.flatMap(\.types), lengths: examples.flatMap(\.lengths),
                              labels: [Int32](repeating: 0, count: sequences * seqLength),
                              lossMask: [Float](repeating: 0, count: sequences * seqLength), sequenceLabels: labels)
    }
}
