import Foundation

/// One-line descriptions of `JSONDecoder` failures for error messages: where in the document
/// the problem is and what it is, instead of the `DecodingError` dump
/// (`keyNotFound(CodingKeys(stringValue: ...), Context(codingPath: [...], ...))`).
public enum JSONDecoding {
    /// `error` as a user reads it: `missing key "model"`, `at "model.vocab": expected an
    /// object`, `not valid JSON`, ... Errors other than `DecodingError` keep their own text.
    public static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        switch error {
        case let .keyNotFound(key, context):
            return "missing key \"\(key.stringValue)\"" + location(context.codingPath, prefix: " in ")
        case let .typeMismatch(type, context):
            return location(context.codingPath, prefix: "at ", suffix: ": ") + "expected \(name(of: type))"
        case let .valueNotFound(type, context):
            return location(context.codingPath, prefix: "at ", suffix: ": ") + "null where \(name(of: type)) is needed"
        case let .dataCorrupted(context):
            // At the document's root: the bytes are not JSON at all (the parser's own wording
            // varies by platform). Deeper: a value the type refuses, in the decoder's words.
            guard !context.codingPath.isEmpty else { return "not valid JSON" }
            return location(context.codingPath, prefix: "at ", suffix: ": ") + context.debugDescription
        @unknown default:
            return "\(error)"
        }
    }

    /// `"a.b[2].c"` for a coding path, or "" for the document itself.
    private static func location(_ path: [any CodingKey], prefix: String, suffix: String = "") -> String {
        guard !path.isEmpty else { return "" }
        var text = ""
        for key in path {
            if let index = key.intValue { text += "[\(index)]" } else { text += (text.isEmpty ? "" : ".") + key.stringValue }
        }
        return prefix + "\"\(text)\"" + suffix
    }

    /// What a user calls a Swift type in JSON terms.
    private static func name(of type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Int.Type, is Int32.Type, is Int64.Type, is UInt32.Type, is UInt64.Type, is UInt8.Type: "an integer"
        case is Double.Type, is Float.Type: "a number"
        default:
            "\(type)".hasPrefix("Array") ? "a list" : "\(type)".hasPrefix("Dictionary") ? "an object" : "an object (\(type))"
        }
    }
}
