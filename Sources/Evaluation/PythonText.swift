import Tokenizer

/// Python string operations the task templates use, on Unicode scalars as Python's `str`.
enum PythonText {
    /// `text.replace(old, new)`: every non-overlapping occurrence, left to right, compared code
    /// point by code point (Swift's `replacing` compares characters, which differs when a match
    /// would end inside a grapheme cluster).
    static func replace(_ text: String, _ old: String, _ new: String) -> String {
        let scalars = Array(text.unicodeScalars), pattern = Array(old.unicodeScalars)
        guard !pattern.isEmpty, scalars.count >= pattern.count else { return text }
        var out = String.UnicodeScalarView()
        var i = 0
        while i < scalars.count {
            if i + pattern.count <= scalars.count && scalars[i..<(i + pattern.count)].elementsEqual(pattern) {
                out.append(contentsOf: new.unicodeScalars)
                i += pattern.count
            } else {
                out.append(scalars[i])
                i += 1
            }
        }
        return String(out)
    }

    /// `re.sub(r"O\s*([^C]*?)\s*C", r"O\1C", text)` for an opening character O and a closing
    /// character C: the whitespace just inside every enclosed span removed.
    static func tightenEnclosed(_ text: String, open: Unicode.Scalar, close: Unicode.Scalar) -> String {
        let scalars = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        while i < scalars.count {
            if scalars[i] == open, let end = scalars[(i + 1)...].firstIndex(of: close) {
                var first = i + 1, last = end
                while first < last && scalars[first].isPythonSpace { first += 1 }
                while last > first && scalars[last - 1].isPythonSpace { last -= 1 }
                out.append(open)
                out.append(contentsOf: scalars[first..<last])
                out.append(close)
                i = end + 1
            } else {
                out.append(scalars[i])
                i += 1
            }
        }
        return String(out)
    }

    /// `len(re.split(r"\s+", text))`: one more than the runs of whitespace.
    static func whitespaceSplitCount(_ text: String) -> Int {
        var runs = 0, inRun = false
        for scalar in text.unicodeScalars {
            let space = scalar.isPythonSpace
            if space && !inRun { runs += 1 }
            inRun = space
        }
        return runs + 1
    }

    /// `str.strip()`.
    static func strip(_ text: String) -> String { String(text.unicodeScalars.trimmingPythonSpace()) }

    /// `str.rstrip()`.
    static func rstrip(_ text: String) -> String {
        let scalars = text.unicodeScalars
        guard let last = scalars.lastIndex(where: { !$0.isPythonSpace }) else { return "" }
        return String(scalars[...last])
    }

    /// `str.capitalize()`: the first character upper-cased, the rest lower-cased.
    static func capitalize(_ text: String) -> String {
        guard let first = text.unicodeScalars.first else { return text }
        return String(first).uppercased() + String(text.unicodeScalars.dropFirst()).lowercased()
    }

    /// `re.sub(r"\[.*?\]", "", text)`: every `[` with the nearest `]` after it on the same line removed.
    static func removeBracketed(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        let scalars = Array(text.unicodeScalars)
        var i = 0
        while i < scalars.count {
            if scalars[i] == "[", let close = scalars[(i + 1)...].firstIndex(where: { $0 == "]" || $0 == "\n" }),
               scalars[close] == "]" {
                i = close + 1
                continue
            }
            out.append(scalars[i])
            i += 1
        }
        return String(out)
    }

    /// `text[start:end]` for non-negative indices.
    static func slice(_ text: String, _ start: Int, _ end: Int, doc: JSONDocument) throws(TaskError) -> String {
        let scalars = Array(text.unicodeScalars)
        guard start >= 0, end >= start else { throw doc.bad("start \(start) and end \(end) do not delimit a word") }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars[min(start, scalars.count)..<min(end, scalars.count)])
        return String(view)
    }
}
