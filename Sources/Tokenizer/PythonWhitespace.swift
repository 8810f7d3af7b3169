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
