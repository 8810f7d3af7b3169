import Foundation

/// BERT's basic tokenizer, the first half of Google BERT's `FullTokenizer` (which Megatron-LM
/// keeps as `bert_tokenization.py`): cleans the text, puts spaces around CJK ideographs, splits
/// on whitespace, lower-cases and strips accents (when lower-casing), then splits off every
/// punctuation character. Works on code points, as the Python original does.
struct BertBasicTokenizer: Sendable {
    /// Lower-case (Python's `str.lower()`, final sigma included) and strip accents (NFD, then
    /// drop nonspacing marks).
    let lowerCase: Bool

    /// The words of `text`, each as its code points.
    func words(_ text: String) -> [[Unicode.Scalar]] {
        var words = [[Unicode.Scalar]]()
        for token in Self.whitespaceSplit(Self.cleaned(text)) {
            var scalars = token
            if lowerCase { scalars = Self.strippingAccents(Self.pythonLowercased(scalars)) }
            var word = [Unicode.Scalar]()
            for scalar in scalars {
                if Self.isPunctuation(scalar) {
                    if !word.isEmpty { words.append(word) }
                    words.append([scalar])
                    word = []
                } else {
                    word.append(scalar)
                }
            }
            if !word.isEmpty { words.append(word) }
        }
        return words
    }

    /// Drops NUL, U+FFFD and control characters, turns whitespace into spaces and surrounds CJK
    /// ideographs with spaces.
    static func cleaned(_ text: String) -> [Unicode.Scalar] {
        var out = [Unicode.Scalar]()
        out.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            if scalar.value == 0 || scalar.value == 0xFFFD || isControl(scalar) { continue }
            if isWhitespace(scalar) {
                out.append(" ")
            } else if isCJK(scalar) {
                out.append(" ")
                out.append(scalar)
                out.append(" ")
            } else {
                out.append(scalar)
            }
        }
        return out
    }

    /// Python's `str.split()`: runs of whitespace separate, none at either end.
    static func whitespaceSplit(_ scalars: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        scalars.split(whereSeparator: \.isPythonSpace).map(Array.init)
    }

    /// BERT's whitespace: space, tab, newline, carriage return and category Zs.
    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        scalar == " " || scalar == "\t" || scalar == "\n" || scalar == "\r" || scalar.properties.generalCategory == .spaceSeparator
    }

    /// BERT's control characters: categories Cc and Cf, except tab, newline and carriage return.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "\t" || scalar == "\n" || scalar == "\r" { return false }
        let category = scalar.properties.generalCategory
        return category == .control || category == .format
    }

    /// BERT's punctuation: the ASCII non-alphanumeric printable characters and category P*.
    static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        switch scalar.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
             .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    /// The CJK Unified Ideographs blocks BERT spaces out (not Hangul, Hiragana or Katakana).
    static func isCJK(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }

    /// Python's `str.lower()`: each code point's full lower-case mapping, and capital sigma as
    /// final sigma (ς) where a cased letter precedes it and none follows (case-ignorable code
    /// points skipped), as Unicode's Final_Sigma condition.
    static func pythonLowercased(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out = [Unicode.Scalar]()
        out.reserveCapacity(scalars.count)
        for (i, scalar) in scalars.enumerated() {
            if scalar.value == 0x03A3 {
                out.append(isFinalSigma(scalars, at: i) ? "\u{03C2}" : "\u{03C3}")
            } else {
                out.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            }
        }
        return out
    }

    private static func isFinalSigma(_ scalars: [Unicode.Scalar], at index: Int) -> Bool {
        func casedNeighbour(_ range: some Sequence<Int>) -> Bool {
            for j in range {
                let properties = scalars[j].properties
                if properties.isCaseIgnorable { continue }
                return properties.isCased
            }
            return false
        }
        return casedNeighbour(stride(from: index - 1, through: 0, by: -1))
            && !casedNeighbour((index + 1)..<scalars.count)
    }

    /// NFD, then without nonspacing marks (category Mn).
    static func strippingAccents(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        String(scalars: scalars).decomposedStringWithCanonicalMapping.unicodeScalars
            .filter { $0.properties.generalCategory != .nonspacingMark }
    }
}
