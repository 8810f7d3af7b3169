/// Megatron's mmap indexed dataset: `PREFIX.bin` is the concatenation of every sequence's tokens;
/// `PREFIX.idx` is, little-endian and packed: the magic `MMIDIDX\0\0`, version u64 = 1, the token
/// dtype code u8, the sequence count S u64, the document-index count D u64, S i32 sequence
/// lengths, S i64 byte offsets of the sequences in `.bin`, and D i64 document boundaries
/// (document i is sequences `[d[i], d[i+1])`; d starts at 0 and ends at S).
public enum IndexedDatasetFormat {
    static let magic: [UInt8] = Array("MMIDIDX".utf8) + [0, 0]
    static let version: UInt64 = 1
    /// Bytes before the sequence lengths.
    static let headerSize = 9 + 8 + 1 + 8 + 8

    /// The `.bin` path of a dataset prefix.
    public static func binPath(_ prefix: String) -> String { prefix + ".bin" }
    /// The `.idx` path of a dataset prefix.
    public static func indexPath(_ prefix: String) -> String { prefix + ".idx" }
}
