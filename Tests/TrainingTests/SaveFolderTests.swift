#if canImport(Glibc)
import Glibc
#endif
import FileSupport
import Foundation
import Testing
@testable import Training

/// The `--save` folder's lock and clean-up, and output files that report write errors and repair
/// torn lines.
@Suite struct SaveFolderTests {
    @Test func secondLockOnAFolderIsRefusedUntilTheFirstIsReleased() throws {
        let directory = ResumeTests.temporaryDirectory() + "/save"
        var first: DirectoryLock? = try DirectoryLock(directory: directory)
        #expect(throws: DirectoryLock.Failure.held(pid: getpid())) { try DirectoryLock(directory: directory) }
        do {
            _ = try SaveFolder.claim(directory)
            Issue.record("claimed a held folder")
        } catch {
            #expect(error.description == "--save: \(directory) is in use by process \(getpid()) (another training run saves "
                    + "there); give each run its own --save folder")
        }
        withExtendedLifetime(first) {}
        first = nil
        _ = try DirectoryLock(directory: directory)
    }

    @Test func unwritableSaveFolderIsRefused() throws {
        let directory = ResumeTests.temporaryDirectory()
        try AtomicFile.write([], to: directory + "/file")
        do {
            _ = try SaveFolder.claim(directory + "/file/checkpoints")
            Issue.record("claimed a folder under a file")
        } catch {
            #expect(error.description.hasPrefix("--save: \(directory)/file/checkpoints is not a writable folder: "))
        }
    }

    @Test func staleTemporariesAreRemovedAndCompleteCheckpointsKept() throws {
        let root = ResumeTests.temporaryDirectory()
        let files = FileManager.default
        for folder in ["iter_0000002", "iter_0000002.old", "iter_0000003.tmp/mp_rank_00", "iter_0000005.old", "iter_2.tmp"] {
            try files.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true)
        }
        for file in ["latest_checkpointed_iteration.txt.tmp-123-456", "iter_0000002/model.safetensors",
                     "latest_checkpointed_iteration.txt", "notes.tmp-1", "notes.tmp-12-ab", "iter_0000005.old/model.safetensors"] {
            try AtomicFile.write([1], to: root + "/" + file)
        }
        let actions = try SaveFolder.removeStaleTemporaries(in: root)
        #expect(actions == ["removed iter_0000002.old", "removed iter_0000003.tmp", "restored iter_0000005.old as iter_0000005",
                            "removed latest_checkpointed_iteration.txt.tmp-123-456"])
        #expect(try files.contentsOfDirectory(atPath: root).sorted() == [
            "iter_0000002", "iter_0000005", "iter_2.tmp", "latest_checkpointed_iteration.txt", "notes.tmp-1", "notes.tmp-12-ab"])
        #expect(files.fileExists(atPath: root + "/iter_0000002/model.safetensors"))
        #expect(files.fileExists(atPath: root + "/iter_0000005/model.safetensors"))
        #expect(try SaveFolder.removeStaleTemporaries(in: root).isEmpty)
    }

    @Test func tornLastLineOfTheMetricsFileIsCutOffBeforeAppending() throws {
        let path = ResumeTests.temporaryDirectory() + "/metrics.jsonl"
        try AtomicFile.write(Array("{\"iteration\":1}\n{\"iterat".utf8), to: path)
        let metrics = try MetricsFile(path: path)
        #expect(metrics.repairedBytes == 8)
        try metrics.write([("iteration", .number(2))])
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "{\"iteration\":1}\n{\"iteration\":2}\n")
        #expect(try MetricsFile(path: path).repairedBytes == 0)
    }

    @Test func metricsAndEventWritesOnAFullDiskAreReported() throws {
        let metrics = try MetricsFile(path: "/dev/full")
        #expect(throws: FileError(path: "/dev/full", reason: "write failed: No space left on device")) {
            try metrics.write([("iteration", .number(1))])
        }
        let writer = try TensorBoardWriter(directory: ResumeTests.temporaryDirectory())
        try writer.scalars([("lm loss", 2.5)], step: 1)
        let full = open("/dev/full", O_WRONLY)
        #expect(dup2(full, writer.descriptor) == writer.descriptor)
        close(full)
        #expect(throws: FileError(path: writer.path, reason: "write failed: No space left on device")) {
            try writer.scalars([("lm loss", 2.5)], step: 2)
        }
    }

    @Test func exitFlagsMustBePositive() throws {
        for (flag, value) in [("exit-interval", 0.0), ("exit-duration-in-mins", -1.0)] {
            #expect(throws: TrainingError.invalidFlag("--\(flag)", flag == "exit-interval" ? "must be >= 1, got 0" : "must be > 0, got -1")) {
                try ResumeTests.config(prefix: "p", extra: [(flag, .number(value))])
            }
        }
        let config = try ResumeTests.config(prefix: "p", extra: [("exit-interval", .number(5)), ("exit-duration-in-mins", .number(0.5)),
                                                                 ("exit-signal-handler", .bool(true))])
        #expect(config.exitInterval == 5 && config.exitDurationInMins == 0.5 && config.exitSignalHandler)
    }
}
