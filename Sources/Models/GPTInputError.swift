/// A micro-batch the model cannot run; the message says what to fix.
public enum GPTInputError: Error, CustomStringConvertible, Equatable {
    case sequenceTooLong(seqLength: Int, maxPositionEmbeddings: Int)
    case tokenOutOfRange(position: Int, id: Int, vocabSize: Int)
    case targetOutOfRange(position: Int, id: Int, vocabSize: Int)
    case sequenceNotDivisible(seqLength: Int, tensorParallel: Int)

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
        }
    }
}
