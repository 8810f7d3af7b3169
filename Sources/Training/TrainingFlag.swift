import FileSupport

/// One flag of `megatron train` under Megatron's name: its kind, default, help text and argument
/// group, and how its value sets a `TrainingConfig`. `TrainingFlag.all` is the one table that the
/// command-line parser, config files (JSON or YAML, `-` or `_` in names), the typed properties and
/// `megatron train --help` all read; the other subcommands take the names and help of the flags
/// they share from it.
public struct TrainingFlag: Sendable {
    /// How the flag's command-line words become a value.
    public enum Kind: String, Sendable {
        /// A whole number (`--num-layers 4`).
        case integer
        /// A real number (`--lr 3e-4`).
        case number
        /// Text, even when it looks like a number (`--save 100`).
        case string
        /// A switch without a value (`--eod-mask-loss`).
        case flag
        /// One or more words up to the next flag (`--data-path 0.3 a 0.7 b`).
        case words
    }

    /// Megatron's argument groups (`megatron/training/arguments.py`), in help order.
    public enum Group: String, Sendable, CaseIterable {
        case networkSize = "network size"
        case initialization
        case regularization = "regularization and optimizer"
        case training
        case mixedPrecision = "mixed precision"
        case learningRate = "learning rate"
        case checkpointing
        case distributed
        case validation
        case data
        case tokenizer
        case logging
    }

    /// Megatron's flag name without the leading dashes (`num-layers`).
    public let name: String
    /// How its value is read from the command line.
    public let kind: Kind
    /// The argument group it is listed under.
    public let group: Group
    /// One line of help.
    public let help: String
    /// The default as `--help` prints it (`required`, `none` or a value).
    public let defaultDescription: String
    /// The value's placeholder in `--help` (`N`, `X`, `PATH`, ...; empty for a switch).
    public let metavar: String
    /// Sets the typed property from a setting's value; throws naming the setting and its source.
    let apply: @Sendable (inout TrainingConfig, Setting) throws(TrainingError) -> Void
    /// The values an integer or number flag accepts (nil for other kinds); checked by
    /// `TrainingConfig.validate()` on the flag's typed property.
    public internal(set) var range: ValueRange? = nil
    /// Reads the flag's property as a number for the range check (nil when it is not set).
    var number: (@Sendable (TrainingConfig) -> Double?)? = nil

    /// Why the flag's value in `config` is out of its range, as `--lr: must be ...` (nil if it is
    /// in range, unset, or the flag has no range).
    func rangeViolation(in config: TrainingConfig) -> TrainingError? {
        guard let range, let value = number?(config), let reason = range.violation(value, float32: kind == .number) else { return nil }
        return .invalidFlag("--" + name, reason)
    }

    /// The help line's flag part: `--num-layers N`.
    public var usage: String { "--" + name + (metavar.isEmpty ? "" : " " + metavar) }

    /// The flag named `name` (without dashes; `_` accepted for `-`), nil if there is none.
    public static func named(_ name: String) -> TrainingFlag? {
        byName[name.replacing("_", with: "-")]
    }

    private static let byName: [String: TrainingFlag] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    /// Every flag grouped by `Group` with its help text and default, as `megatron train --help`
    /// lists them: flags from the left, help from `column`, lines wrapped at `width`.
    public static func helpText(column: Int = 32, width: Int = 78) -> String {
        var lines = [String]()
        for group in Group.allCases {
            let flags = all.filter { $0.group == group }
            if flags.isEmpty { continue }
            if !lines.isEmpty { lines.append("") }
            lines.append(group.rawValue.prefix(1).uppercased() + group.rawValue.dropFirst() + ":")
            for flag in flags {
                var line = "  " + flag.usage
                if line.count + 2 > column {
                    lines.append(line)
                    line = ""
                }
                for word in (flag.help + " (default: \(flag.defaultDescription))").split(separator: " ") {
                    if line.count >= column && line.count + 1 + word.count > width {
                        lines.append(line)
                        line = ""
                    }
                    line = line.count < column ? line + String(repeating: " ", count: column - line.count) + word : line + " " + word
                }
                lines.append(line)
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// A setting on its way into a `TrainingConfig`: its name, value and source; each conversion
/// throws an error naming the setting and the source.
struct Setting {
    let key: String
    let value: JSONValue
    let source: String

    func fail(_ expected: String) -> TrainingError {
        .config(path: source, reason: "\(key) must be \(expected), got \(value.typeName)")
    }

    func int() throws(TrainingError) -> Int {
        guard case let .number(x) = value, x.isFinite, x == x.rounded() else { throw fail("an integer") }
        guard abs(x) < 9e15 else { throw .config(path: source, reason: "\(key) must be an integer below 9e15 in size, got \(x)") }
        return Int(x)
    }

    func double() throws(TrainingError) -> Double {
        guard case let .number(x) = value else { throw fail("a number") }
        return x
    }

    /// Null in a config file (Megatron's YAML writes `ffn_hidden_size: null` for "the default"):
    /// an optional setting left unset.
    var isNull: Bool { value == .null }

    func string() throws(TrainingError) -> String {
        guard case let .string(s) = value else { throw fail("a string") }
        return s
    }

    func bool() throws(TrainingError) -> Bool {
        guard case let .bool(b) = value else { throw fail("true or false") }
        return b
    }

    /// Words from a list of strings or numbers, or from one string split on spaces.
    func strings() throws(TrainingError) -> [String] {
        switch value {
        case let .string(s): return s.split(separator: " ").map(String.init)
        case let .array(items):
            var words = [String]()
            for item in items {
                switch item {
                case let .string(s): words.append(s)
                case let .number(x): words.append(String(x))
                default: throw fail("a list of strings")
                }
            }
            return words
        default: throw fail("a list of strings")
        }
    }
}

// The table's building blocks: one per property type, the default read off `TrainingConfig()`.
extension TrainingFlag {
    typealias Path<Value> = WritableKeyPath<TrainingConfig, Value> & Sendable

    static func integer(_ name: String, _ group: Group, _ path: Path<Int>, _ help: String, range: ValueRange,
                        default text: String? = nil, metavar: String = "N") -> TrainingFlag {
        TrainingFlag(name: name, kind: .integer, group: group, help: help,
                     defaultDescription: text ?? String(TrainingConfig()[keyPath: path]), metavar: metavar,
                     apply: { (config, setting) throws(TrainingError) in config[keyPath: path] = try setting.int() },
                     range: range, number: { Double($0[keyPath: path]) })
    }

    static func integer(_ name: String, _ group: Group, _ path: Path<Int?>, _ help: String, range: ValueRange,
                        default text: String = "none", metavar: String = "N") -> TrainingFlag {
        TrainingFlag(name: name, kind: .integer, group: group, help: help, defaultDescription: text, metavar: metavar,
                     apply: { (config, setting) throws(TrainingError) in config[keyPath: path] = setting.isNull ? nil : try setting.int() },
                     range: range, number: { $0[keyPath: path].map(Double.init) })
    }

    static func number(_ name: String, _ group: Group, _ path: Path<Double?>, _ help: String, range: ValueRange,
                       default text: String = "none") -> TrainingFlag {
        TrainingFlag(name: name, kind: .number, group: group, help: help, defaultDescription: text, metavar: "X",
                     apply: { (config, setting) throws(TrainingError) in config[keyPath: path] = setting.isNull ? nil : try setting.double() },
                     range: range, number: { $0[keyPath: path] })
    }

    static func number(_ name: String, _ group: Group, _ path: Path<Double>, _ help: String, range: ValueRange,
                       default text: String? = nil) -> TrainingFlag {
        TrainingFlag(name: name, kind: .number, group: group, help: help,
                     defaultDescription: text ?? String(TrainingConfig()[keyPath: path]), metavar: "X",
                     apply: { (config, setting) throws(TrainingError) in config[keyPath: path] = try setting.double() },
                     range: range, number: { $0[keyPath: path] })
    }

    static func string(_ name: String, _ group: Group, _ path: Path<String>, _ help: String,
                       metavar: String) -> TrainingFlag {
        TrainingFlag(name: name, kind: .string, group: group, help: help,
                     defaultDescription: "\"\(TrainingConfig()[keyPath: path])\"", metavar: metavar) {
            (config, setting) throws(TrainingError) in config[keyPath: path] = try setting.string()
        }
    }

    static func string(_ name: String, _ group: Group, _ path: Path<String?>, _ help: String,
                       default text: String = "none", metavar: String = "PATH") -> TrainingFlag {
        TrainingFlag(name: name, kind: .string, group: group, help: help, defaultDescription: text, metavar: metavar) {
            (config, setting) throws(TrainingError) in config[keyPath: path] = try setting.string()
        }
    }

    /// A flag whose value is one of `choices` (an enumeration's raw values), stored through `set`.
    static func choice<Value: RawRepresentable & Sendable>(_ name: String, _ group: Group, _ choices: [Value], _ help: String,
                                                default text: String, set: @escaping @Sendable (inout TrainingConfig, Value) -> Void)
        -> TrainingFlag where Value.RawValue == String {
        let names = choices.map(\.rawValue)
        let list = names.dropLast().joined(separator: ", ") + (names.count > 1 ? " or " : "") + (names.last ?? "")
        return TrainingFlag(name: name, kind: .string, group: group, help: help, defaultDescription: text,
                            metavar: names.joined(separator: "|")) { (config, setting) throws(TrainingError) in
            let text = try setting.string()
            guard names.contains(text), let value = Value(rawValue: text) else {
                throw .config(path: setting.source, reason: "\(name) must be \(list), got \(text)")
            }
            set(&config, value)
        }
    }

    static func flag(_ name: String, _ group: Group, _ path: Path<Bool>, _ help: String) -> TrainingFlag {
        TrainingFlag(name: name, kind: .flag, group: group, help: help,
                     defaultDescription: String(TrainingConfig()[keyPath: path]), metavar: "") {
            (config, setting) throws(TrainingError) in config[keyPath: path] = try setting.bool()
        }
    }

    static func words(_ name: String, _ group: Group, _ path: Path<[String]>, _ help: String,
                      default text: String, metavar: String) -> TrainingFlag {
        TrainingFlag(name: name, kind: .words, group: group, help: help, defaultDescription: text, metavar: metavar) {
            (config, setting) throws(TrainingError) in config[keyPath: path] = try setting.strings()
        }
    }
}
