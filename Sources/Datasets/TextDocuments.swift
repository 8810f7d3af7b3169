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
        try file.withBytes { raw in
            let all = raw.assumingMemoryBound(to: UInt8.self)
            for batch in LineBatches(bytes: raw, targetBytes: 1 << 22) {
                for line in batch {
                    let bytes = UnsafeBufferPointer(rebasing: all[line.range])
                    if !isJSON {
                        let newline = line.range.upperBound < all.count ? "\n" : ""
                        do { try body(try UTF8Text.decode(bytes, source: "\(path):\(line.number)") + newline) } catch let error as FileError {
                            throw DatasetError.invalidArgument(error.description)
                        }
                    } else if !bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) {
                        try forEachField(of: bytes, keys: jsonKeys, location: "\(path):\(line.number)", body)
                    }
                }
            }
        }
    }

    private static func forEachField(of line: UnsafeBufferPointer<UInt8>, keys: [String], location: String,
                                     _ body: (String) throws -> Void) throws {
        let value: JSONValue
        do {
            value = try JSONValue.parse(utf8: line)
        } catch {
            throw DatasetError.invalidArgument("\(location): malformed JSON: \(error)")
        }
        for key in keys {
            guard case let .string(text) = value[key] else {
                throw DatasetError.invalidArgument("\(location): no string field \"\(key)\"")
            }
            try body(text)
        }
    }
}
