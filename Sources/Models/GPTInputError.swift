/// A micro-batch the model cannot run; the message says what to fix.
public enum GPTInputError: Error, CustomStringConvertible, Equatable {
    case sequenceTooLong(seqLength: Int, maxPositionEmbeddings: Int)
    case tokenOutOfRange(position: Int, id: Int, vocabSize: Int)
    case targetOutOfRange(position: Int, id: Int, vocabSize: Int)
    case sequenceNotDivisible(seqLength: Int, tensorParallel: Int)
    /// A BERT input outside its range: `field` names it (token type, padding start, sentence order).
    case bertInputOutOfRange(field: String, index: Int, value: Int, accepted: String)
    /// A BERT input array of the wrong length.
    case bertInputCount(field: String, count: Int, expected: Int)

    public var description: String {
        switch self {
        case let .sequenceTooLong(seqLength, maxPositions):
            "sequence length \(seqLength) exceeds --max-position-embeddings \(maxPositions)"
        case let .tokenOutOfRange(position, id, vocab):
            "token id \(id) at position \(position) is outside the padded vocabulary 0..<\(vocab) (wrong tokenizer or --vocab-size?)"
        case let .targetOutOfRange(position, id, vocab):
            "target id \(id) at position \(position) is outside the padded vocabulary 0..<\(vocab) and is not the ignore index -100"
        case let .sequenceNotDivisible(seqLength, t):
            "--sequence-parallel splits each sequence over the \(t) tensor-parallel ranks: the sequence length \(seqLength) is not a multiple of \(t)"
        case let .bertInputOutOfRange(field, index, value, accepted):
            "\(field) \(value) at index \(index) is outside \(accepted)"
        case let .bertInputCount(field, count, expected):
            "\(field) holds \(count) values, the micro-batch needs \(expected)"
        }
    }
}
