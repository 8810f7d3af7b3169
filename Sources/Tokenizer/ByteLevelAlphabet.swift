/// GPT-2's reversible map between the 256 byte values and printable Unicode characters, so that
/// every byte string can be written as a vocabulary entry: printable Latin-1 bytes stand for
/// themselves and the other 68 bytes are shifted to U+0100 and up, in byte order.
public enum ByteLevelAlphabet {
    /// The character that stands for each byte value.
    public static let characterForByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var shifted: UInt32 = 256
        for byte in 0..<256 {
            if isPrintable(byte) {
                table[byte] = Unicode.Scalar(UInt32(byte))!
            } else {
                table[byte] = Unicode.Scalar(shifted)!
                shifted += 1
            }
        }
        return table
    }()

    /// The byte each alphabet character stands for, keyed by its scalar value.
    public static let byteForCharacter: [UInt32: UInt8] = {
        var table = [UInt32: UInt8]()
        for (byte, scalar) in characterForByte.enumerated() { table[scalar.value] = UInt8(byte) }
        return table
    }()

    /// The bytes GPT-2 keeps as themselves: `!`...`~`, `¡`...`¬`, `®`...`ÿ`.
    static func isPrintable(_ byte: Int) -> Bool {
        (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
    }

    /// The vocabulary spelling of a byte string.
    public static func encode<S: Sequence<UInt8>>(_ bytes: S) -> String {
        var scalars = String.UnicodeScalarView()
        for byte in bytes { scalars.append(characterForByte[Int(byte)]) }
        return String(scalars)
    }

    /// The bytes a vocabulary spelling stands for, or nil if it has a character outside the alphabet.
    public static func decode(_ token: String) -> [UInt8]? {
        var bytes = [UInt8]()
        bytes.reserveCapacity(token.unicodeScalars.count)
        for scalar in token.unicodeScalars {
            guard let byte = byteForCharacter[scalar.value] else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}
