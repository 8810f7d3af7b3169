import FileSupport
import Yams

/// Settings from a YAML run config, read with Yams: Megatron's flat layout (`num_layers: 12`, one
/// setting per top-level key) or the nested layout of its `--yaml-cfg` files
/// (`examples/gpt3/gpt_config.yaml`), whose `language_model:` and `model_parallel:` sections hold
/// more flags under the same names; both give the same settings in file order. Plain scalars keep
/// their types as before (numbers, `true`/`false`, `null`/`~`, other text as strings); quoted ones
/// are strings; lists are lists. Any other nested mapping is an error naming the key and the file.
enum YAMLSettings {
    /// Megatron's sections whose keys are flags (`megatron/training/yaml_arguments.py`).
    static let sections: Set<String> = ["language_model", "model_parallel"]

    /// The settings of a YAML text read from `source` (named in errors).
    static func parse(_ text: String, source: String) throws(TrainingError) -> [(key: String, value: JSONValue)] {
        func fail(_ reason: String) -> TrainingError { .config(path: source, reason: reason) }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw fail(reason(error))
        } catch {
            throw fail("malformed YAML: \(error)")
        }
        guard let root else { return [] }
        guard case let .mapping(mapping) = root else { throw fail("expected a mapping of settings such as `num_layers: 12`") }
        var settings = [(key: String, value: JSONValue)]()
        for (keyNode, valueNode) in mapping {
            guard let key = keyNode.scalar?.string else { throw fail("a setting's name must be plain text") }
            guard case let .mapping(section) = valueNode else {
                settings.append((key, try value(valueNode, key: key, fail: fail)))
                continue
            }
            guard sections.contains(key.replacing("-", with: "_")) else {
                throw fail("\(key): nested settings are read only in Megatron's sections \(sections.sorted().joined(separator: " and "))")
            }
            for (innerKey, innerValue) in section {
                guard let name = innerKey.scalar?.string else { throw fail("\(key): a setting's name must be plain text") }
                settings.append((name, try value(innerValue, key: key + "." + name, fail: fail)))
            }
        }
        return settings
    }

    /// A value as JSON: scalars and lists of scalars.
    private static func value(_ node: Node, key: String, fail: (String) -> TrainingError) throws(TrainingError) -> JSONValue {
        switch node {
        case let .scalar(scalar):
            return scalar.style == .plain ? plainScalar(scalar.string) : .string(scalar.string)
        case let .sequence(sequence):
            var items = [JSONValue]()
            for item in sequence {
                guard case let .scalar(scalar) = item else { throw fail("\(key): list items must be plain values") }
                items.append(scalar.style == .plain ? plainScalar(scalar.string) : .string(scalar.string))
            }
            return .array(items)
        case .mapping:
            throw fail("\(key): nested mappings are not settings")
        }
    }

    /// An unquoted scalar: a boolean, null, a number or else text.
    private static func plainScalar(_ text: String) -> JSONValue {
        switch text {
        case "true", "True": return .bool(true)
        case "false", "False": return .bool(false)
        case "null", "~", "": return .null
        default: return Double(text).map(JSONValue.number) ?? .string(text)
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
