import FileSupport

/// Reads documents from a corpus file: JSON lines (`.jsonl`, `.json`; the string fields named by
/// `jsonKeys` of each line, each a document) or plain text (each line, with its newline, a
/// document).
public enum TextDocuments {
    /// Calls `body` with each document of the file at `path`, in order.
    public static func forEach(in path: String, jsonKeys: [String] = ["text"],
                               _ body: (String) throws -> Void) throws {
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch { throw DatasetError.io(error) }
        let isJSON = path.hasSuffix(".jsonl") || path.hasSuffix(".json")
        for batch in LineBatches(bytes: file.bytes, targetBytes: 1 << 22) {
            for line in batch {
                let bytes = UnsafeBufferPointer(rebasing: file.bytes.assumingMemoryBound(to: UInt8.self)[line.range])
                if !isJSON {
                    let end = line.range.upperBound < file.bytes.count ? "\n" : ""
                    try body(String(decoding: bytes, as: UTF8.self) + end)
                    continue
                }
                if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
                let value: JSONValue
                do {
                    value = try JSONValue.parse(utf8: bytes)
                } catch {
                    throw DatasetError.invalidArgument("\(path):\(line.number): malformed JSON: \(error)")
                }
                for key in jsonKeys {
                    guard case let .string(text) = value[key] else {
                        throw DatasetError.invalidArgument("\(path):\(line.number): no string field \"\(key)\"")
                    }
                    try body(text)
                }
            }
        }
    }
}
