@testable import Dashboard
import FileSupport
import Foundation
import Testing

/// Reading a metrics file as the dashboard does: kinds of records, a resumed run's repeated
/// iterations, malformed lines, and a file that grows or is replaced between reads.
@Suite struct RunMetricsTests {
    static let header = #"{"record":"header","settings":{"lr":0.001},"layout":{"tensor_parallel":1,"pipeline_parallel":2,"data_parallel":1,"num_layers":4,"ranks":[{"rank":0,"tp":0,"pp":0,"dp":0,"layers":"0-1"},{"rank":1,"tp":0,"pp":1,"dp":0,"layers":"2-3"}]}}"#

    static func temporaryFile(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(UUID().uuidString).jsonl").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func recordsAreSortedByKindAndALaterIterationWins() throws {
        let path = try Self.temporaryFile("""
            \(Self.header)
            {"iteration":1,"lm_loss":8.5,"lr":0.0001,"stage_compute_s":[0.5,0.25]}
            {"iteration":2,"lm_loss":8.0,"lr":0.0002}
            {"iteration":2,"validation_loss":7.9,"validation_ppl":2697.28}
            \(Self.header)
            {"iteration":2,"lm_loss":7.75,"lr":0.0002}
            {"iteration":3,"lm_loss":null,"lr":0.0003}

            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let run = try MetricsFileReader(path: path, name: "run").refresh()
        #expect(run.starts == 2, "a resumed run writes a second header")
        #expect(run.points("lm_loss").map(\.value) == [8.5, 7.75], "iteration 2 from the resumed run; a null loss is no point")
        #expect(run.points("lr").count == 3)
        #expect(run.points("validation_loss", validation: true).map(\.value) == [7.9])
        #expect(run.training[1]?["stage_compute_s.1"] == 0.25, "per-stage arrays become numbered keys")
        #expect(run.warnings.isEmpty)
        #expect(run.lastIteration == 3)
    }

    @Test func malformedLinesAreSkippedAndNamed() throws {
        let path = try Self.temporaryFile("""
            {"iteration":1,"lm_loss":8.5}
            {"iteration":2,"lm_loss":
            [1,2]
            {"lm_loss":3}
            {"iteration":-1,"lm_loss":3}
            {"iteration":3,"lm_loss":7.5}

            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let run = try MetricsFileReader(path: path, name: "run").refresh()
        #expect(run.points("lm_loss").map(\.iteration) == [1, 3], "the good lines are all read")
        #expect(run.warnings.count == 4)
        #expect(run.warnings[0].hasPrefix("line 2: not JSON"))
        #expect(run.warnings[1] == "line 3: an array, not a JSON object")
        #expect(run.warnings[2].hasPrefix("line 4: no whole-number \"iteration\""))
    }

    @Test func aGrowingFileIsReadIncrementallyAndAReplacedOneAfresh() throws {
        let path = try Self.temporaryFile(#"{"iteration":1,"lm_loss":8.5}"# + "\n" + #"{"iteration":2,"lm_"#)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let reader = MetricsFileReader(path: path, name: "run")
        #expect(try reader.refresh().points("lm_loss").count == 1, "a line without its newline waits")
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        let appended: String = #"loss":8.0}"# + "\n" + #"{"iteration":3,"lm_loss":7.0}"# + "\n"
        handle.write(Data(appended.utf8))
        try handle.close()
        let grown = try reader.refresh()
        #expect(grown.points("lm_loss").map(\.value) == [8.5, 8.0, 7.0])
        #expect(grown.warnings.isEmpty, "the line split over two reads is whole")
        try (#"{"iteration":9,"lm_loss":1.0}"# + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try reader.refresh().points("lm_loss").map(\.iteration) == [9], "a rewritten file is read from its start")
    }

    @Test func aMissingFileIsAnErrorNamingIt() {
        let reader = MetricsFileReader(path: "/nonexistent/metrics.jsonl", name: "run")
        #expect(throws: FileError.self) { try reader.refresh() }
        let runs = DashboardRuns(paths: ["/nonexistent/metrics.jsonl"])
        #expect(runs.snapshot()[0].warnings.first?.contains("/nonexistent/metrics.jsonl") == true)
    }

    @Test func runsSharingAFileNameAreToldApartByTheirFolder() {
        #expect(DashboardRuns.names(for: ["a/metrics.jsonl", "b/metrics.jsonl", "c.jsonl"]) == ["a/metrics.jsonl", "b/metrics.jsonl", "c.jsonl"])
        #expect(DashboardRuns.names(for: ["/x/runs/a/m.jsonl", "/x/runs/b/m.jsonl"]) == ["a/m.jsonl", "b/m.jsonl"])
        // Folders of the same name: as much of the path as tells them apart; the same file twice: numbered.
        #expect(DashboardRuns.names(for: ["a/x/m.jsonl", "b/x/m.jsonl", "m.jsonl"]) == ["a/x/m.jsonl", "b/x/m.jsonl", "m.jsonl"])
        #expect(DashboardRuns.names(for: ["r/m.jsonl", "r/m.jsonl", "r/m.jsonl"]) == ["r/m.jsonl", "r/m.jsonl (2)", "r/m.jsonl (3)"])
    }
}
