#if canImport(FoundationEssentials)
import FoundationEssentials
#endif
import Foundation
import FileSupport
import Testing

/// The strict JSON reader against Foundation's on preprocess input: every line of the bundled
/// JSONL corpus parsed by each; prints the times (no timed assertion) and checks they agree.
/// Figures in a release build (swiftc -O, 1,000 lines, 401 KB): JSONValue about 1.3 ms per pass
/// (~300 MB/s), JSONSerialization and JSONDecoder about 5 ms (~80 MB/s); a debug build times the
/// unoptimized reader (about 9 ms) against optimized Foundation.
@Suite struct JSONReaderBenchmarkTests {
    struct Document: Decodable { let text: String }

    @Test func strictReaderAgainstFoundation() throws {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        let bytes = try MappedFile.read(path: path + "/data/devils-dictionary/devils_dictionary.jsonl")
        let lines = bytes.split(separator: UInt8(ascii: "\n")).map { Array($0) }
        let data = lines.map { Data($0) }
        func time(_ name: String, _ body: () throws -> [String]) rethrows -> [String] {
            let clock = ContinuousClock()
            var texts = [String]()
            let elapsed = try clock.measure { texts = try body() }
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            print("\(name): \(lines.count) lines, \(bytes.count) bytes in \(seconds * 1000) ms (\(Double(bytes.count) / seconds / 1e6) MB/s)")
            return texts
        }
        let strict = try time("JSONValue") {
            try lines.map { line in
                guard case let .string(text)? = try JSONValue.parse(utf8: line)["text"] else { return "" }
                return text
            }
        }
        let serialization = try time("JSONSerialization") {
            try data.map { (try JSONSerialization.jsonObject(with: $0) as? [String: Any])?["text"] as? String ?? "" }
        }
        let decoder = JSONDecoder()
        let codable = try time("JSONDecoder") { try data.map { try decoder.decode(Document.self, from: $0).text } }
        #expect(strict == serialization && strict == codable)
        // Strictness: a trailing comma is an error here, not in JSONSerialization.
        #expect(throws: JSONError.self) { try JSONValue.parse(#"{"a": 1,}"#) }
    }
}
