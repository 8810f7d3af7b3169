extension Unicode.Scalar {
    /// Python's `str.isspace()` of this code point (also what `\s` matches in a `str` pattern and
    /// where `str.split()` splits): Unicode's White_Space plus the separators U+001C-U+001F.
    /// Ports of Python text processing (lm-eval's prompts, the curation filters, BERT's basic
    /// tokenizer) split and strip with it.
    @inlinable
    public var isPythonSpace: Bool {
        if value < 0x80 { return value == 0x20 || (0x09...0x0D).contains(value) || (0x1C...0x1F).contains(value) }
        return properties.isWhitespace
    }
}

extension BidirectionalCollection where Element == Unicode.Scalar {
    /// Python's `str.strip()`: without `isPythonSpace` code points at either end.
    public func trimmingPythonSpace() -> SubSequence {
        guard let first = firstIndex(where: { !$0.isPythonSpace }) else { return self[endIndex...] }
        let last = lastIndex { !$0.isPythonSpace }!
        return self[first...last]
    }
}

extension String {
    /// The string of these code points, as they are (no normalization).
    public init(scalars: some Sequence<Unicode.Scalar>) {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        self.init(view)
    }
}
