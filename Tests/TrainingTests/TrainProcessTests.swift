#if canImport(Glibc)
import Glibc
#endif
import FileSupport
import Foundation
import Testing
@testable import Training

/// `megatron train` as real processes: signals, exit flags, two runs racing for one `--save`.
/// Needs the `megatron` binary built beside the tests (`swift build --build-tests`).
@Suite(.serialized) struct TrainProcessTests {
    /// The `megatron` executable next to this test binary (`MEGATRON_BINARY` overrides it).
    static let binary: String = {
        if let path = ProcessInfo.processInfo.environment["MEGATRON_BINARY"] { return path }
        let tests = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: tests).deletingLastPathComponent().appendingPathComponent("megatron").path
    }()

    static let corpusPrefix: String = { try! ResumeTests.corpus().prefix }()

    /// A tiny model's flags; the long `--train-iters` keeps the data order the same in every run.
    static func arguments(_ extra: [String]) -> [String] {
        ["train", "--num-layers", "2", "--hidden-size", "32", "--num-attention-heads", "2", "--seq-length", "16",
         "--micro-batch-size", "2", "--global-batch-size", "4", "--lr", "3e-3", "--train-iters", "100000",
         "--eval-interval", "100000", "--eval-iters", "1", "--data-path", corpusPrefix, "--tokenizer-file",
         ResumeTests.tokenizerFile, "--split", "90,10,0", "--log-interval", "1"] + extra
    }

    /// A started `megatron train` with its standard output and error going to files.
    final class Run {
        let process = Process()
        let output: String

        init(_ extra: [String]) throws {
            #expect(FileManager.default.isExecutableFile(atPath: TrainProcessTests.binary),
                    "build the megatron binary first (swift build --build-tests)")
            output = ResumeTests.temporaryDirectory()
            process.executableURL = URL(fileURLWithPath: TrainProcessTests.binary)
            process.arguments = TrainProcessTests.arguments(extra)
            _ = FileManager.default.createFile(atPath: output + "/stdout", contents: nil)
            _ = FileManager.default.createFile(atPath: output + "/stderr", contents: nil)
            process.standardOutput = FileHandle(forWritingAtPath: output + "/stdout")
            process.standardError = FileHandle(forWritingAtPath: output + "/stderr")
            try process.run()
        }

        /// Waits for the exit (killing the run after `limit` seconds); returns the status,
        /// standard output and error.
        func wait(limit: Double = 300) -> (status: Int32, stdout: String, stderr: String) {
            let deadline = Date().addingTimeInterval(limit)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning {
                Issue.record("megatron train still running after \(limit) s: killed")
                kill(process.processIdentifier, SIGKILL)
            }
            process.waitUntilExit()
            let read = { (name: String) in (try? String(contentsOfFile: self.output + "/" + name, encoding: .utf8)) ?? "" }
            return (process.terminationStatus, read("stdout"), read("stderr"))
        }
    }

    /// The `lm_loss` of each iteration in a metrics file, by iteration.
    static func losses(_ path: String) throws -> [Int: Double] {
        var losses = [Int: Double]()
        for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") {
            let record = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            if let loss = record["lm_loss"] as? Double { losses[record["iteration"] as! Int] = loss }
        }
        return losses
    }

    /// Waits until `path` holds at least `lines` lines (or the process ended).
    /// Waits until the metrics file holds `lines` iteration records (the header record aside).
    static func waitForLines(_ path: String, _ lines: Int, while run: Run) {
        let deadline = Date().addingTimeInterval(300)
        while run.process.isRunning && Date() < deadline {
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            if text.split(separator: "\n").filter({ $0.contains("\"lm_loss\"") }).count >= lines { return }
            usleep(20_000)
        }
    }

    @Test func sigtermSavesExitsZeroAndTheResumeContinuesBitIdentically() throws {
        let directory = ResumeTests.temporaryDirectory()
        let save = directory + "/checkpoints", metrics = directory + "/metrics.jsonl"
        let interrupted = try Run(["--save", save, "--metrics-file", metrics, "--exit-signal-handler"])
        Self.waitForLines(metrics, 2, while: interrupted)
        kill(interrupted.process.processIdentifier, SIGTERM)
        let first = interrupted.wait()
        #expect(first.status == 0, "\(first.stderr)")
        let stopped = try Checkpoint.latestIteration(in: save)
        #expect(stopped >= 2)
        // Written to a file, the log still holds the lines of the moment of the signal.
        #expect(first.stdout.contains("> saved checkpoint at iteration \(stopped) to \(save)"))
        #expect(first.stdout.contains("> exiting at iteration \(stopped): received SIGTERM"))

        let end = stopped + 2
        let resumed = try Run(["--load", save, "--save", save, "--metrics-file", metrics, "--exit-interval", String(end)]).wait()
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let straight = try Run(["--save", directory + "/straight", "--metrics-file", directory + "/straight.jsonl",
                                "--exit-interval", String(end)]).wait()
        #expect(straight.status == 0, "\(straight.stderr)")
        let expected = try Self.losses(directory + "/straight.jsonl")
        #expect(expected.count == end)
        #expect(try Self.losses(metrics) == expected)
    }

    @Test func twoRunsStartedTogetherOnOneSaveFolder() throws {
        let save = ResumeTests.temporaryDirectory() + "/checkpoints"
        let runs = try [Run(["--save", save, "--exit-interval", "2"]), Run(["--save", save, "--exit-interval", "2"])]
        let results = runs.map { $0.wait() }
        #expect(results.filter { $0.status == 0 }.count == 1)
        guard let refused = results.first(where: { $0.status != 0 }),
              let winner = runs.first(where: { $0.process.terminationStatus == 0 }) else { return }
        #expect(refused.stderr.contains("--save: \(save) is in use by process \(winner.process.processIdentifier)"),
                "\(refused.stderr)")
        #expect(try Checkpoint.latestIteration(in: save) == 2)
    }

    @Test func secondRunOnABusySaveFolderIsRefusedWhileTheFirstGoesOn() throws {
        let directory = ResumeTests.temporaryDirectory()
        let save = directory + "/checkpoints", metrics = directory + "/metrics.jsonl"
        let first = try Run(["--save", save, "--metrics-file", metrics, "--exit-signal-handler"])
        Self.waitForLines(metrics, 1, while: first)
        let second = try Run(["--save", save, "--exit-interval", "1"]).wait()
        #expect(second.status != 0)
        #expect(second.stderr.contains("--save: \(save) is in use by process \(first.process.processIdentifier)"), "\(second.stderr)")
        kill(first.process.processIdentifier, SIGINT)
        let result = first.wait()
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("received SIGINT"))
    }

    @Test func aKilledRunKeepsItsLogLines() throws {
        let metrics = ResumeTests.temporaryDirectory() + "/metrics.jsonl"
        let run = try Run(["--metrics-file", metrics])
        Self.waitForLines(metrics, 1, while: run)
        kill(run.process.processIdentifier, SIGKILL)
        let result = run.wait()
        #expect(result.status == SIGKILL)
        // The log line of iteration 1 is printed before its metrics record is written.
        #expect(result.stdout.contains(" iteration        1/  100000 |"), "\(result.stdout)")
    }

    @Test func unwritableSaveFailsAtStart() throws {
        let directory = ResumeTests.temporaryDirectory()
        try AtomicFile.write([], to: directory + "/file")
        let result = try Run(["--save", directory + "/file/checkpoints"]).wait()
        #expect(result.status != 0)
        #expect(result.stderr.contains("--save: \(directory)/file/checkpoints is not a writable folder"), "\(result.stderr)")
        #expect(!result.stdout.contains("iteration"))
    }

    @Test func exitDurationStopsEveryRankAtTheSameIteration() throws {
        let directory = ResumeTests.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory + "/checkpoints/iter_0000007.tmp", withIntermediateDirectories: true)
        let result = try Run(["--save", directory + "/checkpoints", "--data-parallel-size", "2",
                              "--exit-duration-in-mins", "0.0001"]).wait()
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("> cleaned up after an earlier run in \(directory)/checkpoints: removed iter_0000007.tmp"))
        #expect(result.stdout.contains("> exiting at iteration 1: the run lasted --exit-duration-in-mins 0.0001"))
        #expect(try Checkpoint.latestIteration(in: directory + "/checkpoints") == 1)
    }
}
