import FileSupport

/// Typed access to a JSON request body's fields: a missing field takes its default, a field of
/// the wrong type or out of range is a `ServeError.badRequest` naming it.
struct RequestFields {
    let body: JSONValue

    init(_ bytes: [UInt8]) throws(ServeError) {
        do { body = try JSONValue.parse(utf8: bytes) } catch {
            throw .badRequest("the body is not valid JSON: \(error)")
        }
        guard case .object = body else { throw .badRequest("the body must be a JSON object") }
    }

    func has(_ name: String) -> Bool {
        if let value = body[name], value != .null { return true }
        return false
    }

    func integer(_ name: String, default value: Int? = nil, in range: ClosedRange<Int>? = nil) throws(ServeError) -> Int? {
        guard let field = body[name], field != .null else { return value }
        guard case let .number(x) = field, x == x.rounded(), abs(x) < 9e15 else { throw .badRequest("\(name) must be an integer") }
        if let range, !range.contains(Int(x)) {
            throw .badRequest("\(name) must be between \(range.lowerBound) and \(range.upperBound), got \(Int(x))")
        }
        return Int(x)
    }

    func number(_ name: String, default value: Double, in range: ClosedRange<Double>) throws(ServeError) -> Double {
        guard let field = body[name], field != .null else { return value }
        guard case let .number(x) = field else { throw .badRequest("\(name) must be a number") }
        guard range.contains(x) else { throw .badRequest("\(name) must be between \(range.lowerBound) and \(range.upperBound), got \(x)") }
        return x
    }

    func bool(_ name: String, default value: Bool) throws(ServeError) -> Bool {
        guard let field = body[name], field != .null else { return value }
        guard case let .bool(x) = field else { throw .badRequest("\(name) must be true or false") }
        return x
    }

    /// A string or a list of strings (OpenAI's `stop`).
    func strings(_ name: String) throws(ServeError) -> [String] {
        switch body[name] {
        case nil, .null?: return []
        case let .string(text)?: return [text]
        case let .array(values)?:
            var result = [String]()
            for value in values {
                guard case let .string(text) = value else { throw .badRequest("\(name) must be a string or a list of strings") }
                result.append(text)
            }
            return result
        default: throw .badRequest("\(name) must be a string or a list of strings")
        }
    }
}
