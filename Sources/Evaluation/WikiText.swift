/// lm-evaluation-harness's `wikitext` task (`wikitext/preprocess_wikitext.py`): a document's
/// `page` detokenized from WikiText's spaced-out form, scored whole by rolling windows; its
/// perplexities are per word and per byte of the page as distributed (before detokenizing).
enum WikiText {
    /// The page as lm-eval scores it (`wikitext_detokenizer`), step by step in its order.
    static func detokenize(_ page: String) -> String {
        var text = PythonText.replace(page, "s '", "s'")
        text = replaceSlashQuotedDigit(text)
        for (old, new) in [(" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."), (" : ", ": "), (" ; ", "; "), (" . ", ". "),
                           (" ! ", "! "), (" ? ", "? "), (" , ", ", ")] {
            text = PythonText.replace(text, old, new)
        }
        for (open, close) in [("(", ")"), ("[", "]"), ("{", "}"), ("\"", "\""), ("'", "'")] as [(Unicode.Scalar, Unicode.Scalar)] {
            text = PythonText.tightenEnclosed(text, open: open, close: close)
        }
        for (old, new) in [("= = = =", "===="), ("= = =", "==="), ("= =", "=="), (" \u{B0} ", "\u{B0}"), (" \n", "\n"),
                           ("\n ", "\n"), (" N ", " 1 "), (" 's", "'s")] {
            text = PythonText.replace(text, old, new)
        }
        return text
    }

    /// `re.sub(r"/' [0-9]/", r"/'[0-9]/", text)`: the reference's pattern puts the literal text
    /// `/'[0-9]/` in place of a slash, quote, space, digit and slash.
    private static func replaceSlashQuotedDigit(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        while i < scalars.count {
            if i + 5 <= scalars.count && scalars[i] == "/" && scalars[i + 1] == "'" && scalars[i + 2] == " "
                && ("0"..."9").contains(scalars[i + 3]) && scalars[i + 4] == "/" {
                out.append(contentsOf: "/'[0-9]/".unicodeScalars)
                i += 5
            } else {
                out.append(scalars[i])
                i += 1
            }
        }
        return String(out)
    }

    /// The document's parts: its detokenized page as the target, and the words and UTF-8 bytes
    /// of the page as distributed that its perplexities are normalised by.
    static func format(_ doc: JSONDocument) throws(TaskError) -> FormattedDocument {
        let page = try doc.string("page")
        let words = PythonText.whitespaceSplitCount(page)
        // Its perplexities divide by the page's words and bytes.
        guard words > 0 else { throw doc.bad("the page has no words to score") }
        return FormattedDocument(texts: [""], choices: [], gold: 0, target: detokenize(page), words: words, bytes: page.utf8.count)
    }
}
