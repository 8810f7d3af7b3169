import FileSupport
import Foundation
import Testing
import TestSupport
@testable import Curation

/// Decontamination against lm-eval 0.4.13's own `Janitor` (python path; fixture by
/// `scripts/reference/curation_fixtures.py`): the same documents found contaminated and the same
/// pieces kept, with the default settings and with small ones.
@Suite struct DecontaminationTests {
    static let fixture = try! JSONValue.parse(utf8: try MappedFile.read(path: fixturesDirectory() + "/janitor.json"))

    static func strings(_ value: JSONValue?) -> [String] {
        guard case let .array(values)? = value else { return [] }
        return values.compactMap { if case let .string(text) = $0 { text } else { nil } }
    }

    @Test(arguments: ["default", "small"])
    func equalsTheJanitor(variant: String) throws {
        let result = try #require(Self.fixture["results"]?[variant])
        let number = { (key: String) -> Int in if case let .number(x)? = result["settings"]?[key] { Int(x) } else { -1 } }
        var settings = Decontaminator.Settings()
        settings.ngram = number("ngram_n")
        settings.window = number("window_to_remove")
        settings.tooDirtyCutoff = number("too_dirty_cutoff")
        settings.minimumPieceLength = number("minimum_slice_length")
        var decontaminator = Decontaminator(settings: settings)
        for task in Self.strings(Self.fixture["tasks"]) { decontaminator.register(task: task) }
        let documents = Self.strings(Self.fixture["documents"])
        guard case let .array(outputs)? = result["outputs"] else { Issue.record("no outputs"); return }
        #expect(outputs.count == documents.count)
        var contaminated = 0, tooDirty = 0
        for (document, expected) in zip(documents, outputs) {
            let pieces = Self.strings(expected["pieces"])
            switch decontaminator.clean(document) {
            case .clean:
                #expect(expected["contaminated"] == .bool(false), "\(document.prefix(60))")
            case let .split(ours, _):
                contaminated += 1
                #expect(expected["contaminated"] == .bool(true))
                #expect(ours == pieces, "\(document.prefix(60))")
            case .tooDirty:
                contaminated += 1
                tooDirty += 1
                #expect(expected["contaminated"] == .bool(true) && pieces.isEmpty)
            }
        }
        print("janitor \(variant): \(contaminated) of \(documents.count) documents contaminated, \(tooDirty) too dirty")
        #expect(contaminated > 0 && tooDirty > 0)
    }

    /// The step over files: task JSONL in, pieces out as lines with the other fields kept, the
    /// report's counts; a task n-gram common to more task documents than the limit is ignored.
    @Test func decontaminatesAFile() throws {
        let directory = CurationFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let task = "the quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat by the door"
        try CurationFiles.writeLines([#"{"question": "\#(task)", "id": 3}"#], to: directory + "/task.jsonl")
        let filler = String(repeating: "lorem ipsum dolor sit amet ", count: 20)
        try CurationFiles.writeLines([
            #"{"text": "\#(filler)THE QUICK, BROWN FOX JUMPS OVER THE LAZY DOG WHILE THE CAT SLEEPS ON THE WARM MAT \#(filler)", "source": "a"}"#,
            #"{"text": "nothing to see here", "source": "b"}"#,
        ], to: directory + "/in.jsonl")
        var decontaminator = Decontaminator()
        try decontaminator.register(taskFiles: [directory + "/task.jsonl"], keys: [])
        #expect(decontaminator.taskNgrams.count == 8)  // 20 words: 8 13-grams
        let report = try decontaminator.run(input: directory + "/in.jsonl", output: directory + "/out.jsonl",
                                            reportPath: directory + "/report.json")
        let lines = try String(contentsOfFile: directory + "/out.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 3)  // two pieces of the first document, then the second whole
        #expect(lines[0].hasSuffix(#""source":"a"}"#) && !lines[0].contains("QUICK") && lines[2].contains("nothing to see"))
        #expect(report.datasets.first?.first { $0.key == "contaminated" }?.value == .number(1))
        // The same task text in three task documents, limited to two: ignored.
        var limited = Decontaminator.Settings()
        limited.maxTaskFrequency = 2
        var frequent = Decontaminator(settings: limited)
        for _ in 0..<3 { frequent.register(task: task) }
        #expect(frequent.taskNgrams.isEmpty)
    }
}

/// Files for curation tests.
enum CurationFiles {
    static func temporaryDirectory() -> String {
        var template = Array("/tmp/megatron-curate-XXXXXX".utf8CString)
        return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }

    static func writeLines(_ lines: [String], to path: String) throws {
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }
}
