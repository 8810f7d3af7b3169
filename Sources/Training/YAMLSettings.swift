import FileSupport

/// Settings from a YAML run config (as `YAMLDocument` reads it): Megatron's flat layout
/// (`num_layers: 12`, one setting per top-level key) or the nested layout of its `--yaml-cfg` files
/// (`examples/gpt3/gpt_config.yaml`), whose `language_model:` and `model_parallel:` sections hold
/// more flags under the same names; both give the same settings in file order. Plain scalars keep
/// their types as before (numbers, `true`/`false`, `null`/`~`, other text as strings); quoted ones
/// are strings; lists are lists. Any other nested mapping is an error naming the key and the file.
enum YAMLSettings {
    /// Megatron's sections whose keys are flags (`megatron/training/yaml_arguments.py`).
    static let sections: Set<String> = ["language_model", "model_parallel"]

    /// The settings of a YAML document (`ConfigDocument.read`'s; nil: none) read from `source`
    /// (named in errors).
    static func settings(of root: JSONValue?, source: String) throws(TrainingError) -> [(key: String, value: JSONValue)] {
        func fail(_ reason: String) -> TrainingError { .config(path: source, reason: reason) }
        guard let root else { throw fail("the YAML config holds no settings (empty, or comments only)") }
        guard case let .object(members) = root else { throw fail("expected a mapping of settings such as `num_layers: 12`") }
        var settings = [(key: String, value: JSONValue)]()
        for (key, value) in members {
            guard case let .object(section) = value else {
                settings.append((key, try setting(value, key: key, fail: fail)))
                continue
            }
            guard sections.contains(key.replacing("-", with: "_")) else {
                throw fail("\(key): nested settings are read only in Megatron's sections \(sections.sorted().joined(separator: " and "))")
            }
            for (name, inner) in section { settings.append((name, try setting(inner, key: key + "." + name, fail: fail))) }
        }
        return settings
    }

    /// A setting's value: a scalar or a list of scalars.
    private static func setting(_ value: JSONValue, key: String, fail: (String) -> TrainingError) throws(TrainingError) -> JSONValue {
        switch value {
        case .object: throw fail("\(key): nested mappings are not settings")
        case let .array(items):
            for item in items {
                switch item {
                case .array, .object: throw fail("\(key): list items must be plain values")
                default: continue
                }
            }
            return value
        default: return value
        }
    }
}
