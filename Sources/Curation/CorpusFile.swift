import Datasets
import FileSupport

/// What curation does with a line that is not a JSON object with the text fields.
public enum MalformedLinePolicy: String, Sendable, CaseIterable {
    /// Stop with an error naming FILE:LINE (the default).
    case fail
    /// Leave the line out of the output and count it in the report, with FILE:LINE.
    case skip
}

/// A curation step's error: one message naming the file (and line) and the problem.
public struct CurationError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One document of a JSONL corpus: its line (1-based), the line's bytes as they are, and its text
/// (the string fields named by the text keys, joined by a blank line when several). Its bytes are
/// a read-only view of the mapped file, which threads may share.
public struct CorpusDocument: @unchecked Sendable {
    public let line: Int
    public let raw: UnsafeRawBufferPointer
    public let text: String
}

/// A JSONL corpus file read line by line from a memory map, in batches (for threads to share).
public struct CorpusFile {
    public let path: String
    public let textKeys: [String]
    public let malformed: MalformedLinePolicy
    private let file: MappedFile

    public init(path: String, textKeys: [String] = ["text"], malformed: MalformedLinePolicy = .fail) throws(CurationError) {
        self.path = path
        self.textKeys = textKeys
        self.malformed = malformed
        do { file = try MappedFile(path: path) } catch { throw CurationError("\(error)") }
    }

    /// Calls `body` with each batch of documents (about `batchBytes` of input each), in order;
    /// blank lines are passed over, malformed ones go to `rejected` as "FILE:LINE: reason" (or
    /// stop the read, with `.fail`).
    public func forEachBatch(batchBytes: Int = 4 << 20, rejected: (String) -> Void,
                             _ body: ([CorpusDocument]) throws(CurationError) -> Void) throws(CurationError) {
        let bytes = file.bytes
        for batch in LineBatches(bytes: bytes, targetBytes: batchBytes) {
            var documents = [CorpusDocument]()
            documents.reserveCapacity(batch.count)
            for line in batch {
                let raw = UnsafeRawBufferPointer(rebasing: bytes[line.range])
                if raw.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
                switch Self.text(of: raw, keys: textKeys) {
                case let .success(text):
                    documents.append(CorpusDocument(line: line.number, raw: raw, text: text))
                case let .failure(reason):
                    let message = "\(path):\(line.number): \(reason)"
                    if malformed == .fail { throw CurationError(message + " (--malformed skip leaves such lines out)") }
                    rejected(message)
                }
            }
            try body(documents)
        }
    }

    /// The text of one JSON line, or why it has none.
    static func text(of line: UnsafeRawBufferPointer, keys: [String]) -> Result<String, CurationError> {
        let value: JSONValue
        do {
            value = try JSONValue.parse(utf8: line.assumingMemoryBound(to: UInt8.self))
        } catch {
            return .failure(CurationError("malformed JSON: \(error)"))
        }
        var parts = [String]()
        for key in keys {
            guard case let .string(text) = value[key] else { return .failure(CurationError("no string field \"\(key)\"")) }
            parts.append(text)
        }
        return .success(parts.joined(separator: "\n\n"))
    }

    /// The line with its text field (the first text key) replaced by `text`, other fields kept in
    /// their order.
    static func replacingText(in line: UnsafeRawBufferPointer, key: String, with text: String) -> String? {
        guard case let .object(fields)? = try? JSONValue.parse(utf8: line.assumingMemoryBound(to: UInt8.self)) else { return nil }
        return JSONValue.object(fields.map { $0.key == key ? ($0.key, .string(text)) : $0 }).serialized
    }
}
