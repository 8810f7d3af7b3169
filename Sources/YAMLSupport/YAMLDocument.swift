import FileSupport
import Yams

/// A YAML document read (with Yams) into the `JSONValue` tree the JSON configs use, so one reader
/// checks a config whichever format it came in: mappings become objects with their keys in file
/// order, sequences arrays; plain scalars become booleans (`true`/`false`, `True`/`False`), null
/// (`null`, `~`, nothing), numbers or else text; quoted scalars stay text.
public enum YAMLDocument {
    /// Why a text is not a YAML document we read: one line, with the line and column where known.
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    /// The document's root, or nil when the text holds no document (empty, or comments only).
    public static func parse(_ text: String) throws(Error) -> JSONValue? {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw Error(description: reason(error))
        } catch {
            throw Error(description: "malformed YAML: \(error)")
        }
        return try root.map { node throws(Error) in try value(node, at: "") }
    }

    /// An unquoted scalar: a boolean, null, a number in decimal notation (YAML 1.2's core schema:
    /// `12`, `-0.5`, `3e-4`, not `0x10`, `inf` or `nan`, which stay text) or else text.
    public static func plainScalar(_ text: String) -> JSONValue {
        switch text {
        case "true", "True": return .bool(true)
        case "false", "False": return .bool(false)
        case "null", "~", "": return .null
        default:
            let decimal = text.allSatisfy { $0.isASCII && ($0.isNumber || "+-.eE".contains($0)) }
                && text.contains(where: \.isNumber)
            return decimal ? Double(text).map(JSONValue.number) ?? .string(text) : .string(text)
        }
    }

    /// `node` as JSON; `path` names it in errors (`a.b[2]`).
    private static func value(_ node: Node, at path: String) throws(Error) -> JSONValue {
        switch node {
        case let .scalar(scalar):
            return scalar.style == .plain ? plainScalar(scalar.string) : .string(scalar.string)
        case let .sequence(sequence):
            var items = [JSONValue]()
            for (index, item) in sequence.enumerated() { items.append(try value(item, at: "\(path)[\(index)]")) }
            return .array(items)
        case let .mapping(mapping):
            var members = [(key: String, value: JSONValue)]()
            for (keyNode, valueNode) in mapping {
                guard let key = keyNode.scalar?.string else {
                    throw Error(description: "\(path.isEmpty ? "a key" : path + ": a key") must be plain text")
                }
                members.append((key, try value(valueNode, at: path.isEmpty ? key : path + "." + key)))
            }
            return .object(members)
        }
    }

    /// Yams's error as one line: where and what.
    private static func reason(_ error: YamlError) -> String {
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            return "malformed YAML at line \(mark.line), column \(mark.column): " + (context.map { $0.text + ": " } ?? "") + problem
        default:
            return "malformed YAML: " + String(describing: error).split(separator: "\n").joined(separator: " ")
        }
    }
}
