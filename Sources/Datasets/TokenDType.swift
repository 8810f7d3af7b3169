/// The element type of the tokens in a `.bin` file, with Megatron's codes in the `.idx` header.
public enum TokenDType: UInt8, Sendable, CaseIterable {
    case uint8 = 1, int8 = 2, int16 = 3, int32 = 4, int64 = 5, float64 = 6, float32 = 7, uint16 = 8

    /// Bytes per token.
    public var size: Int {
        switch self {
        case .uint8, .int8: 1
        case .int16, .uint16: 2
        case .int32, .float32: 4
        case .int64, .float64: 8
        }
    }

    /// Megatron's choice for a vocabulary: uint16 below 65500 ids, else int32.
    public static func optimal(forVocabularySize size: Int) -> TokenDType {
        size < 65500 ? .uint16 : .int32
    }

    /// numpy's name for the type.
    public var name: String {
        switch self {
        case .uint8: "uint8"
        case .int8: "int8"
        case .int16: "int16"
        case .int32: "int32"
        case .int64: "int64"
        case .float64: "float64"
        case .float32: "float32"
        case .uint16: "uint16"
        }
    }
}
