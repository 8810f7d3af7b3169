/// GPT-2's pre-tokenizer, the regular expression
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
/// written out as a scanner over UTF-8 bytes. Alternatives are tried in that order at each
/// position; the only backtracking case is a whitespace run followed by a non-space, which gives
/// up its last character so that the character can prefix the next word.
struct GPT2PreTokenizer {
    /// What the regular expression distinguishes about a character.
    enum CharacterClass: UInt8 {
        case letter, number, space, otherWhitespace, apostrophe, other
        var isWhitespace: Bool { self == .space || self == .otherWhitespace }
        /// Matched by `[^\s\p{L}\p{N}]`.
        var isOther: Bool { self == .apostrophe || self == .other }
    }

    private var classes: [CharacterClass] = []
    /// Byte offset of each character, plus one past the end.
    private var offsets: [Int] = []

    /// Calls `body` with the byte range of each pre-token of `text`, in order; the ranges tile it.
    mutating func split(_ text: UnsafeBufferPointer<UInt8>, _ body: (Range<Int>) -> Void) {
        decodeClasses(text)
        let count = classes.count
        classes.withUnsafeBufferPointer { classes in
            offsets.withUnsafeBufferPointer { offsets in
                var i = 0
                while i < count {
                    let end = Self.match(at: i, classes: classes, text: text, offsets: offsets, count: count)
                    body(offsets[i]..<offsets[end])
                    i = end
                }
            }
        }
    }

    /// The character index where the match starting at `i` ends.
    @inline(__always)
    private static func match(at i: Int, classes: UnsafeBufferPointer<CharacterClass>,
                              text: UnsafeBufferPointer<UInt8>, offsets: UnsafeBufferPointer<Int>,
                              count: Int) -> Int {
        let first = classes[i]
        if first == .apostrophe, let end = contractionEnd(at: i, text: text, offsets: offsets, count: count) {
            return end
        }
        var j = i
        var kind = first
        if first == .space, i + 1 < count, !classes[i + 1].isWhitespace {
            j = i + 1
            kind = classes[j]
        }
        switch kind {
        case .letter, .number:
            j += 1
            while j < count && classes[j] == kind { j += 1 }
            return j
        case .apostrophe, .other:
            j += 1
            while j < count && classes[j].isOther { j += 1 }
            return j
        case .space, .otherWhitespace:
            var k = i + 1
            while k < count && classes[k].isWhitespace { k += 1 }
            // `\s+(?!\S)`: at the end of the text, or give back the last space before a non-space.
            if k == count || k - i == 1 { return k }
            return k - 1
        }
    }

    /// `'s 't 're 've 'm 'll 'd` (lower case, ASCII apostrophe only).
    @inline(__always)
    private static func contractionEnd(at i: Int, text: UnsafeBufferPointer<UInt8>,
                                       offsets: UnsafeBufferPointer<Int>, count: Int) -> Int? {
        guard i + 1 < count else { return nil }
        let b1 = text[offsets[i + 1]]
        switch b1 {
        case UInt8(ascii: "s"), UInt8(ascii: "t"), UInt8(ascii: "m"), UInt8(ascii: "d"): return i + 2
        default: break
        }
        guard i + 2 < count else { return nil }
        let b2 = text[offsets[i + 2]]
        switch (b1, b2) {
        case (UInt8(ascii: "r"), UInt8(ascii: "e")), (UInt8(ascii: "v"), UInt8(ascii: "e")),
             (UInt8(ascii: "l"), UInt8(ascii: "l")):
            return i + 3
        default: return nil
        }
    }

    /// Fills `classes` and `offsets` for valid UTF-8 `text`.
    private mutating func decodeClasses(_ text: UnsafeBufferPointer<UInt8>) {
        classes.removeAll(keepingCapacity: true)
        offsets.removeAll(keepingCapacity: true)
        var p = 0
        let n = text.count
        while p < n {
            let b0 = text[p]
            offsets.append(p)
            if b0 < 0x80 {
                classes.append(Self.asciiClasses[Int(b0)])
                p += 1
                continue
            }
            var value: UInt32
            var length: Int
            if b0 < 0xE0 {
                value = UInt32(b0 & 0x1F); length = 2
            } else if b0 < 0xF0 {
                value = UInt32(b0 & 0x0F); length = 3
            } else {
                value = UInt32(b0 & 0x07); length = 4
            }
            length = min(length, n - p)
            for k in 1..<max(length, 1) { value = value << 6 | UInt32(text[p + k] & 0x3F) }
            classes.append(Self.classify(value))
            p += max(length, 1)
        }
        offsets.append(n)
    }

    private static let asciiClasses: [CharacterClass] = (0..<128).map { byte in
        switch UInt8(byte) {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"): .letter
        case UInt8(ascii: "0")...UInt8(ascii: "9"): .number
        case UInt8(ascii: " "): .space
        case 0x09...0x0D: .otherWhitespace
        case UInt8(ascii: "'"): .apostrophe
        default: .other
        }
    }

    /// Classes of U+0080 ..< U+0800, the Latin, Greek, Cyrillic, Hebrew and Arabic blocks.
    private static let twoByteClasses: [CharacterClass] = (0x80..<0x800).map {
        unicodeClass(Unicode.Scalar(UInt32($0))!)
    }

    @inline(__always)
    private static func classify(_ value: UInt32) -> CharacterClass {
        if value < 0x80 { return .other }  // only from malformed UTF-8 (overlong or stray bytes)
        if value < 0x800 { return twoByteClasses[Int(value) - 0x80] }
        guard let scalar = Unicode.Scalar(value) else { return .other }
        return unicodeClass(scalar)
    }

    private static func unicodeClass(_ scalar: Unicode.Scalar) -> CharacterClass {
        let properties = scalar.properties
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return .number
        default:
            return properties.isWhitespace ? .otherWhitespace : .other
        }
    }
}
