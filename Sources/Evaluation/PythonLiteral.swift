import FileSupport

/// Python literals as `ast.literal_eval` reads them, for the fields some datasets store as a
/// Python `repr` (RACE's `problems`): lists, tuples, dicts, strings (single, double or triple
/// quoted, with escapes), integers, floats, `True`, `False`, `None`. Read into `JSONValue`.
enum PythonLiteral {
    struct ParseError: Error, CustomStringConvertible {
        let offset: Int
        let reason: String
        var description: String { "\(reason) at character \(offset + 1)" }
    }

    static func parse(_ text: String) throws(ParseError) -> JSONValue {
        var parser = Parser(scalars: Array(text.unicodeScalars))
        let value = try parser.value()
        parser.skipSpace()
        guard parser.position == parser.scalars.count else { throw parser.error("trailing characters") }
        return value
    }

    struct Parser {
        let scalars: [Unicode.Scalar]
        var position = 0

        func error(_ reason: String) -> ParseError { ParseError(offset: position, reason: reason) }

        mutating func skipSpace() {
            while position < scalars.count, scalars[position].properties.isWhitespace { position += 1 }
        }

        mutating func value() throws(ParseError) -> JSONValue {
            skipSpace()
            guard position < scalars.count else { throw error("unexpected end") }
            switch scalars[position] {
            case "[", "(":
                let close: Unicode.Scalar = scalars[position] == "[" ? "]" : ")"
                position += 1
                return .array(try sequence(until: close) { (p: inout Parser) throws(ParseError) in try p.value() })
            case "{":
                position += 1
                var members = [(key: String, value: JSONValue)]()
                _ = try sequence(until: "}") { (p: inout Parser) throws(ParseError) -> Int in
                    guard case let .string(key) = try p.value() else { throw p.error("a dict key must be a string") }
                    p.skipSpace()
                    guard p.position < p.scalars.count, p.scalars[p.position] == ":" else { throw p.error("expected :") }
                    p.position += 1
                    members.append((key, try p.value()))
                    return 0
                }
                return .object(members)
            case "'", "\"": return .string(try string())
            default: return try word()
            }
        }

        /// Comma-separated elements up to `close` (a trailing comma allowed).
        mutating func sequence<T>(until close: Unicode.Scalar, _ element: (inout Parser) throws(ParseError) -> T)
            throws(ParseError) -> [T] {
            var result = [T]()
            while true {
                skipSpace()
                guard position < scalars.count else { throw error("unclosed \(close)") }
                if scalars[position] == close { position += 1; return result }
                result.append(try element(&self))
                skipSpace()
                guard position < scalars.count else { throw error("unclosed \(close)") }
                if scalars[position] == "," { position += 1 } else if scalars[position] != close { throw error("expected , or \(close)") }
            }
        }

        mutating func string() throws(ParseError) -> String {
            let quote = scalars[position]
            let triple = position + 2 < scalars.count && scalars[position + 1] == quote && scalars[position + 2] == quote
            position += triple ? 3 : 1
            var out = String.UnicodeScalarView()
            while true {
                guard position < scalars.count else { throw error("unterminated string") }
                let c = scalars[position]
                if c == quote && (!triple || (position + 2 < scalars.count && scalars[position + 1] == quote && scalars[position + 2] == quote)) {
                    position += triple ? 3 : 1
                    return String(out)
                }
                position += 1
                guard c == "\\" else { out.append(c); continue }
                guard position < scalars.count else { throw error("unterminated string") }
                let escaped = scalars[position]
                position += 1
                switch escaped {
                case "n": out.append("\n")
                case "t": out.append("\t")
                case "r": out.append("\r")
                case "0": out.append("\0")
                case "\\", "'", "\"": out.append(escaped)
                case "\n": break
                case "x", "u", "U":
                    let digits = escaped == "x" ? 2 : escaped == "u" ? 4 : 8
                    guard position + digits <= scalars.count,
                          let code = UInt32(String(String.UnicodeScalarView(scalars[position..<(position + digits)])), radix: 16),
                          let scalar = Unicode.Scalar(code) else { throw error("bad \\\(escaped) escape") }
                    out.append(scalar)
                    position += digits
                default:
                    out.append("\\")
                    out.append(escaped)
                }
            }
        }

        mutating func word() throws(ParseError) -> JSONValue {
            let start = position
            while position < scalars.count, !",:]})".unicodeScalars.contains(scalars[position]),
                  !scalars[position].properties.isWhitespace {
                position += 1
            }
            let text = String(String.UnicodeScalarView(scalars[start..<position]))
            switch text {
            case "True": return .bool(true)
            case "False": return .bool(false)
            case "None": return .null
            default:
                guard let number = Double(text) else { position = start; throw error("unexpected \(text.isEmpty ? "character" : text)") }
                return .number(number)
            }
        }
    }
}
