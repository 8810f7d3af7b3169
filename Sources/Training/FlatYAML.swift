import FileSupport

/// The YAML subset run configs need: one `key: value` per line (a flat mapping), `#` comments,
/// scalars (numbers, true/false, null, plain or quoted strings), inline lists `[a, b]` and block
/// lists (`- item` lines under a key). Anything else (nesting, anchors, multi-line strings) is
/// an error naming the line.
enum FlatYAML {
    static func parse(_ text: String, source: String) throws(TrainingError) -> [(key: String, value: JSONValue)] {
        var result = [(key: String, value: JSONValue)]()
        var listKey: String?
        var list = [JSONValue]()
        func flush() {
            if let key = listKey { result.append((key, .array(list))) }
            listKey = nil
            list = []
        }
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = stripComment(String(rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine))
            let trimmed = line.trimmed
            if trimmed.isEmpty || trimmed == "---" { continue }
            func fail(_ reason: String) -> TrainingError { .config(path: source, reason: "line \(number + 1): \(reason)") }
            if trimmed.hasPrefix("- ") || trimmed == "-" {
                guard listKey != nil else { throw fail("a list item without a key above it") }
                list.append(scalar(String(trimmed.dropFirst()).trimmed))
                continue
            }
            guard line.first.map({ !$0.isWhitespace }) ?? false else {
                throw fail("nested mappings are not supported (flat `key: value` lines only)")
            }
            guard let colon = trimmed.firstIndex(of: ":") else { throw fail("expected `key: value`") }
            flush()
            let key = String(trimmed[..<colon]).trimmed
            let value = String(trimmed[trimmed.index(after: colon)...]).trimmed
            guard !key.isEmpty else { throw fail("empty key") }
            if value.isEmpty {
                listKey = key  // a block list follows
            } else if value.hasPrefix("[") {
                guard value.hasSuffix("]") else { throw fail("unterminated inline list") }
                let inner = value.dropFirst().dropLast()
                result.append((key, .array(inner.split(separator: ",").map { scalar(String($0).trimmed) })))
            } else if value.hasPrefix("{") || value.hasPrefix("&") || value.hasPrefix("*") || value.hasPrefix("|") || value.hasPrefix(">") {
                throw fail("only plain scalars and lists are supported")
            } else {
                result.append((key, scalar(value)))
            }
        }
        flush()
        return result
    }

    private static func stripComment(_ line: String) -> String {
        var inQuote: Character?
        var previous: Character = " "
        for (offset, character) in line.enumerated() {
            if let quote = inQuote {
                if character == quote { inQuote = nil }
            } else if character == "\"" || character == "'" {
                inQuote = character
            } else if character == "#" && previous.isWhitespace {
                return String(line.prefix(offset))
            }
            previous = character
        }
        return line
    }

    private static func scalar(_ text: String) -> JSONValue {
        if text.count >= 2, let first = text.first, first == "\"" || first == "'", text.last == first {
            return .string(String(text.dropFirst().dropLast()))
        }
        switch text {
        case "true", "True": return .bool(true)
        case "false", "False": return .bool(false)
        case "null", "~": return .null
        default: return Double(text).map(JSONValue.number) ?? .string(text)
        }
    }
}

extension String {
    var trimmed: String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
