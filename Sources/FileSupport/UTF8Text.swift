/// Text that must be UTF-8 (a corpus, a text file to score, standard input), refused with the
/// first offending byte rather than read with U+FFFD in place of what is not UTF-8 (which would
/// silently change what is tokenized, trained on or scored).
public enum UTF8Text {
    /// `bytes` as a string; throws naming `source` and the offset of the first byte that is not
    /// part of valid UTF-8.
    public static func decode<Bytes: Collection<UInt8>>(_ bytes: Bytes, source: String) throws(FileError) -> String {
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        throw FileError(path: source, reason: "byte \(firstInvalidOffset(bytes) ?? 0) is not valid UTF-8 (the text must be UTF-8)")
    }

    /// The offset of the first byte that does not start or continue a valid UTF-8 scalar (nil
    /// when all are valid).
    public static func firstInvalidOffset<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Int? {
        var iterator = bytes.makeIterator()
        var parser = Unicode.UTF8.ForwardParser()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let scalar): offset += scalar.count
            case .error: return offset
            case .emptyInput: return nil
            }
        }
    }
}
