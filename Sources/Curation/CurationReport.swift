#if canImport(FoundationEssentials)
import FoundationEssentials
#endif
import Foundation
import FileSupport

/// The JSON report every curation step writes beside its outputs: its settings, per dataset the
/// documents read, kept and removed (by reason), the malformed lines, and a sample of removed
/// documents with why.
public struct CurationReport {
    public let step: String
    public var settings: [(key: String, value: JSONValue)] = []
    public var datasets: [[(key: String, value: JSONValue)]] = []
    public var samples: [JSONValue] = []
    public var malformed: [String] = []
    /// Removed documents kept as samples, per reason.
    public static let samplesPerReason = 5

    public init(step: String) { self.step = step }

    /// Adds a removed document to the samples unless its reason has enough already.
    public mutating func sample(reason: String, location: String, text: String, extra: [(key: String, value: JSONValue)] = []) {
        let count = samples.filter { if case let .object(fields) = $0 { fields.first?.value == .string(reason) } else { false } }.count
        guard count < Self.samplesPerReason else { return }
        let preview = text.count > 300 ? String(text.prefix(300)) + "..." : text
        samples.append(.object([("reason", .string(reason)), ("document", .string(location))] + extra + [("text", .string(preview))]))
    }

    /// One dataset's counts for a log line: "documents 12, kept 10, ..." (whole numbers as they
    /// are, others with 3 decimals).
    public static func counts(_ fields: [(key: String, value: JSONValue)]) -> String {
        fields.compactMap { field -> String? in
            guard case let .number(x) = field.value else { return nil }
            let value = x == x.rounded() && abs(x) < 1e15 ? "\(Int(x))" : String(format: "%.3f", x)
            return "\(field.key.replacingOccurrences(of: "_", with: " ")) \(value)"
        }.joined(separator: ", ")
    }

    public var json: JSONValue {
        .object([("step", .string(step)), ("settings", .object(settings)), ("datasets", .array(datasets.map { .object($0) })),
                 ("malformed_lines", .array(malformed.map { .string($0) })), ("removed_samples", .array(samples))])
    }

    /// Writes the report to `path` and commits the step's `outputs` with it, as one: a report or
    /// an output that cannot be written leaves every old file in place.
    public func write(to path: String, committing outputs: [CorpusWriter]) throws(CurationError) {
        do {
            let writer = try AtomicFileWriter(path: path)
            try writer.write(Array((json.serialized + "\n").utf8))
            try AtomicFileWriter.commit(outputs.map(\.writer) + [writer])
        } catch {
            throw CurationError("\(error)")
        }
    }
}

/// Writes a step's output JSONL atomically: nothing appears at the path until the step's report
/// commits it (`CurationReport.write(to:committing:)`), and a step that stops on an error leaves
/// the old file (or none) in place.
public final class CorpusWriter {
    fileprivate let writer: AtomicFileWriter
    public private(set) var documents = 0

    public init(path: String) throws(CurationError) {
        do { writer = try AtomicFileWriter(path: path) } catch { throw CurationError("\(error)") }
    }

    /// Appends one line (its bytes without a newline).
    public func append(_ line: UnsafeRawBufferPointer) throws(CurationError) {
        do {
            try writer.write(line)
            try writer.write([0x0A])
        } catch {
            throw CurationError("\(error)")
        }
        documents += 1
    }

    /// Ends the writing (the file stays unnamed until the step's report commits it), so that a
    /// step with many outputs does not keep them all open.
    public func finish() throws(CurationError) {
        do { try writer.finish() } catch { throw CurationError("\(error)") }
    }

    public func append(_ line: String) throws(CurationError) {
        var line = line
        try rethrowing(line.withUTF8 { bytes in capture { () throws(CurationError) in try append(UnsafeRawBufferPointer(bytes)) } })
    }
}
