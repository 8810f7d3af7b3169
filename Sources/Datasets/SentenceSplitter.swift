import Tokenizer

/// Splits text into sentences for `preprocess --split-sentences` (Megatron's BERT data keeps a
/// document as its sentences). Megatron uses NLTK's Punkt with its pretrained English model,
/// which cannot be fetched here; this is a rule-based splitter in Punkt's spirit:
///
/// - a sentence ends at `.`, `!`, `?` or `…` (a run of them, then any closing quotes and
///   brackets) that is followed by whitespace and then by an upper-case letter, a digit, or an
///   opening quote or bracket before one, or by the end of the text;
/// - but not after a known abbreviation ("Dr.", "e.g.", "Jan.") or a single letter (initials,
///   "J. R. R. Tolkien", and a dictionary's "LOVE, n. A temporary insanity"); an ellipsis followed
///   by a lower-case word does not end one either (no upper case follows).
///
/// Whitespace between sentences is dropped; every sentence is non-empty.
public struct SentenceSplitter: Sendable {
    /// Lower-cased abbreviations (without their final period) after which a period does not end
    /// a sentence.
    public var abbreviations: Set<String>

    public init(abbreviations: Set<String> = SentenceSplitter.englishAbbreviations) {
        self.abbreviations = abbreviations
    }

    /// Titles, Latin, units, months and days, company and address words.
    public static let englishAbbreviations: Set<String> = [
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "rev", "hon", "gen", "col", "lt", "sgt", "capt", "cmdr",
        "adm", "gov", "sen", "rep", "pres", "messrs", "mme", "mlle",
        "vs", "etc", "e.g", "i.e", "cf", "al", "viz", "ca", "approx", "est", "ibid", "op", "cit", "n.b",
        "no", "nos", "fig", "figs", "vol", "vols", "ed", "eds", "p", "pp", "ch", "sec", "art", "ser",
        "inc", "ltd", "co", "corp", "bros", "dept", "univ", "assn", "ave", "blvd", "rd",
        "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
        "mon", "tue", "tues", "wed", "thu", "thur", "thurs", "fri", "sat", "sun",
        "a.m", "p.m", "u.s", "u.k", "ft", "lb", "lbs", "oz", "min", "max",
    ]

    /// The sentences of `text`, in order.
    public func split(_ text: String) -> [String] {
        let s = Array(text.unicodeScalars)
        var sentences = [String]()
        var start = 0
        var i = 0
        while i < s.count {
            guard Self.isTerminator(s[i]) else { i += 1; continue }
            var end = i
            while end < s.count && Self.isTerminator(s[end]) { end += 1 }
            while end < s.count && Self.isCloser(s[end]) { end += 1 }
            var next = end
            while next < s.count && s[next].isPythonSpace { next += 1 }
            let atEnd = next == s.count
            if (atEnd || (next > end && startsSentence(s, at: next))) && !isAbbreviation(s, period: i, run: end) {
                append(s[start..<end], to: &sentences)
                start = next
            }
            i = max(end, i + 1)
        }
        append(s[start..<s.count], to: &sentences)
        return sentences
    }

    /// Whether a sentence may start at `index`: an upper-case letter or digit, possibly after
    /// opening quotes and brackets.
    private func startsSentence(_ s: [Unicode.Scalar], at index: Int) -> Bool {
        var k = index
        while k < s.count && Self.isOpener(s[k]) { k += 1 }
        guard k < s.count else { return false }
        let properties = s[k].properties
        return properties.isUppercase || properties.generalCategory == .titlecaseLetter
            || properties.numericType == .decimal
    }

    /// Whether the terminator run at `period..<run` is one period after an abbreviation or an
    /// initial.
    private func isAbbreviation(_ s: [Unicode.Scalar], period: Int, run: Int) -> Bool {
        guard s[period] == ".", period + 1 == run || !Self.isTerminator(s[period + 1]) else { return false }
        var first = period
        while first > 0 && (s[first - 1].properties.isAlphabetic || s[first - 1] == ".") { first -= 1 }
        guard first < period else { return false }
        let lowered = String(scalars: s[first..<period]).lowercased()
        if abbreviations.contains(lowered) { return true }
        return period - first == 1  // one letter: an initial ("J.") or a dictionary's part of speech ("n.")
    }

    private func append(_ scalars: ArraySlice<Unicode.Scalar>, to sentences: inout [String]) {
        let sentence = scalars.trimmingPythonSpace()
        if !sentence.isEmpty { sentences.append(String(scalars: sentence)) }
    }

    private static func isTerminator(_ scalar: Unicode.Scalar) -> Bool {
        scalar == "." || scalar == "!" || scalar == "?" || scalar == "\u{2026}"
    }

    private static func isCloser(_ scalar: Unicode.Scalar) -> Bool {
        "\"')]}\u{201D}\u{2019}\u{00BB}".unicodeScalars.contains(scalar)
    }

    private static func isOpener(_ scalar: Unicode.Scalar) -> Bool {
        "\"'([{\u{201C}\u{2018}\u{00AB}".unicodeScalars.contains(scalar)
    }
}
