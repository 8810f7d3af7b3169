#if canImport(Glibc)
import Glibc
#endif

/// The CPU's model name and feature flags, from `/proc/cpuinfo` (its first processor; empty where
/// the file cannot be read).
public struct CPUInfo: Sendable {
    public var modelName = ""
    public var flags: Set<String> = []

    /// This machine's.
    public static let current = CPUInfo(contentsOf: "/proc/cpuinfo")

    init(contentsOf path: String) {
        guard let file = fopen(path, "r") else { return }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while (modelName.isEmpty || flags.isEmpty), getline(&line, &capacity, file) > 0, let line {
            let text = String(cString: line)
            guard let colon = text.firstIndex(of: ":") else { continue }
            let key = text[..<colon].split(whereSeparator: \.isWhitespace).joined(separator: " ")
            let value = text[text.index(after: colon)...]
            if modelName.isEmpty, key.hasPrefix("model name") {
                modelName = value.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            } else if flags.isEmpty, key == "flags" {
                flags = Set(value.split(whereSeparator: \.isWhitespace).map(String.init))
            }
        }
    }

    public init(modelName: String, flags: Set<String>) {
        self.modelName = modelName
        self.flags = flags
    }
}
