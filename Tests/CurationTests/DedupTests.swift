import FileSupport
import Foundation
import Testing
@testable import Curation

/// `curate dedup` over files: exact and near duplicates across datasets in priority order,
/// malformed lines, and outputs that appear only whole.
@Suite struct DedupTests {
    static func words(_ count: Int, seed: UInt64) -> [String] {
        var generator = SplitMix(seed: seed)
        return (0..<count).map { _ in "w\(generator.next() % 5000)" }
    }

    @Test func removesExactAndNearDuplicatesAcrossDatasets() throws {
        let directory = CurationFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let base = Self.words(300, seed: 1)
        var near = base
        near[150] = "changed"  // one word of 300: Jaccard of 5-gram sets about 0.97
        let other = Self.words(300, seed: 2)
        let line = { (words: [String]) in #"{"text": "\#(words.joined(separator: " "))"}"# }
        try CurationFiles.writeLines([line(base), line(other)], to: directory + "/high.jsonl")
        try CurationFiles.writeLines([
            line(near),                                                 // near duplicate of high:1
            #"{"text": "\#(base.joined(separator: #"  \n\t "#))"}"#,  // exact (after normalisation) of high:1
            line(Self.words(300, seed: 3)),                             // new
            line(Self.words(300, seed: 3)),                             // exact of low:3
        ], to: directory + "/low.jsonl")
        let deduplicator = Deduplicator(options: DedupOptions())
        let report = try deduplicator.run(inputs: [directory + "/high.jsonl", directory + "/low.jsonl"],
                                          outputs: [directory + "/high.out.jsonl", directory + "/low.out.jsonl"],
                                          reportPath: directory + "/report.json")
        let high = try String(contentsOfFile: directory + "/high.out.jsonl", encoding: .utf8).split(separator: "\n")
        let low = try String(contentsOfFile: directory + "/low.out.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(high.count == 2 && low.count == 1 && low[0].contains(Self.words(300, seed: 3)[0]))
        let counts = report.datasets.map { fields in
            ["kept", "exact_duplicates", "near_duplicates"].map { key in fields.first { $0.key == key }?.value }
        }
        #expect(counts[1] == [.number(1), .number(2), .number(1)])
        let samples = report.json["removed_samples"]?.serialized ?? ""
        #expect(samples.contains("high.jsonl:1") && samples.contains("jaccard_estimate"))
    }

    /// A family of 60 near-copies (each one word changed from the first) is one cluster: all but
    /// the first removed, each compared with the cluster's bucket member only.
    @Test func aFamilyOfNearCopiesIsOneCluster() throws {
        let directory = CurationFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let base = Self.words(400, seed: 7)
        let lines = (0..<60).map { i -> String in
            var words = base
            if i > 0 { words[(i * 37) % words.count] = "edit\(i)" }
            return #"{"text": "\#(words.joined(separator: " "))"}"#
        }
        try CurationFiles.writeLines(lines, to: directory + "/in.jsonl")
        let report = try Deduplicator(options: DedupOptions()).run(inputs: [directory + "/in.jsonl"], outputs: [directory + "/out.jsonl"],
                                                                   reportPath: directory + "/report.json")
        #expect(report.datasets[0].first { $0.key == "near_duplicates" }?.value == .number(59))
    }

    /// A malformed line stops the step with FILE:LINE and writes nothing; `--malformed skip`
    /// leaves it out and reports it.
    @Test func malformedLinesAreNamed() throws {
        let directory = CurationFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try CurationFiles.writeLines([#"{"text": "fine"}"#, #"{"text": "broken"#, #"{"title": "no text"}"#], to: directory + "/in.jsonl")
        let inputs = [directory + "/in.jsonl"], outputs = [directory + "/out.jsonl"]
        #expect { try Deduplicator(options: DedupOptions()).run(inputs: inputs, outputs: outputs, reportPath: directory + "/r.json") }
            throws: { "\($0)".contains("in.jsonl:2: malformed JSON") }
        #expect(!FileManager.default.fileExists(atPath: outputs[0]) && !FileManager.default.fileExists(atPath: directory + "/r.json"))
        var options = DedupOptions()
        options.malformed = .skip
        let report = try Deduplicator(options: options).run(inputs: inputs, outputs: outputs, reportPath: directory + "/r.json")
        #expect(report.malformed.count == 2 && report.malformed[1].contains("in.jsonl:3: no string field \"text\""))
        #expect(try String(contentsOfFile: outputs[0], encoding: .utf8) == #"{"text": "fine"}"# + "\n")
    }

    /// The outputs and the report are committed as one: when the second output (or the report)
    /// cannot be written, the first output's old file is still there, and no temporary file is left.
    @Test func anOutputThatCannotBeWrittenReplacesNone() throws {
        let directory = CurationFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try CurationFiles.writeLines([#"{"text": "one"}"#], to: directory + "/a.jsonl")
        try CurationFiles.writeLines([#"{"text": "two"}"#], to: directory + "/b.jsonl")
        try CurationFiles.writeLines(["old"], to: directory + "/a.out.jsonl")
        let inputs = [directory + "/a.jsonl", directory + "/b.jsonl"]
        try FileManager.default.createDirectory(atPath: directory + "/b.out.jsonl", withIntermediateDirectories: false)
        #expect { try Deduplicator(options: DedupOptions()).run(inputs: inputs, outputs: [directory + "/a.out.jsonl", directory + "/b.out.jsonl"],
                                                               reportPath: directory + "/r.json") }
            throws: { "\($0)".contains("b.out.jsonl: is a folder, not a file") }
        #expect(try String(contentsOfFile: directory + "/a.out.jsonl", encoding: .utf8) == "old\n")
        try FileManager.default.removeItem(atPath: directory + "/b.out.jsonl")
        try FileManager.default.createDirectory(atPath: directory + "/r.json", withIntermediateDirectories: false)
        #expect { try Deduplicator(options: DedupOptions()).run(inputs: inputs, outputs: [directory + "/a.out.jsonl", directory + "/b.out.jsonl"],
                                                               reportPath: directory + "/r.json") }
            throws: { "\($0)".contains("r.json: is a folder, not a file") }
        #expect(try String(contentsOfFile: directory + "/a.out.jsonl", encoding: .utf8) == "old\n")
        #expect(!FileManager.default.fileExists(atPath: directory + "/b.out.jsonl"))
        let left = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains(".tmp-") }
        #expect(left.isEmpty, "\(left)")
    }
}
