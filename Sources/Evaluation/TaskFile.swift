import FileSupport

/// A task's documents: one JSON object per line (blank lines skipped), as the public datasets
/// are distributed in JSON Lines.
public enum TaskFile {
    /// The documents of `path`; a line that is not a JSON object is an error naming it.
    public static func read(path: String) throws -> [JSONValue] {
        let bytes = try MappedFile.read(path: path)
        var documents = [JSONValue]()
        var line = 0
        for slice in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            line += 1
            guard slice.contains(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\t") }) else {
                continue
            }
            let value: JSONValue
            do { value = try JSONValue.parse(utf8: Array(slice)) } catch {
                throw TaskError.badFile(path: path, reason: "line \(line) is not valid JSON: \(error)")
            }
            guard case .object = value else { throw TaskError.badFile(path: path, reason: "line \(line) is not a JSON object") }
            documents.append(value)
        }
        guard !documents.isEmpty else { throw TaskError.badFile(path: path, reason: "no documents") }
        return documents
    }
}
