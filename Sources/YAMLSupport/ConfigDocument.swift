import FileSupport

/// A config file read whole into a `JSONValue`: YAML for a `.yaml`/`.yml` file (`YAMLDocument`),
/// JSON for any other. What `train --config` and `curate run` read before checking their keys.
public enum ConfigDocument {
    /// Why a config file could not be read: one line, without the path (the caller names it).
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    /// Whether `path` is read as YAML.
    public static func isYAML(_ path: String) -> Bool { path.hasSuffix(".yaml") || path.hasSuffix(".yml") }

    /// The file's document, or nil for a YAML file that holds none (empty, or comments only).
    public static func read(_ path: String) throws(Error) -> JSONValue? {
        let bytes: [UInt8]
        do { bytes = try MappedFile.read(path: path) } catch { throw Error(description: error.reason) }
        if isYAML(path) {
            do { return try YAMLDocument.parse(String(decoding: bytes, as: UTF8.self)) } catch {
                throw Error(description: error.description)
            }
        }
        do { return try JSONValue.parse(utf8: bytes) } catch { throw Error(description: "malformed JSON: \(error)") }
    }
}
