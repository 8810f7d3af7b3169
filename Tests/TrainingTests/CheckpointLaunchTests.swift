#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import FileSupport
import Optimizer
import Parameters
import Testing
@testable import Training

/// Megatron's job-script habit (`--save ck --load ck` from the first launch on) and the messages
/// for checkpoints with missing parts.
@Suite(.serialized) struct CheckpointLaunchTests {
    /// The error `body` throws, as text ("" if it throws none).
    static func message(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return ""
    }

    @Test func firstLaunchWithAnEmptyLoadFolderStartsFromScratch() throws {
        let (directory, prefix) = try ResumeTests.corpus()
        let fresh = try ResumeTests.trainer(try ResumeTests.config(prefix: prefix))
        let freshLoss = try fresh.step().loss
        try FileManager.default.createDirectory(atPath: directory + "/empty", withIntermediateDirectories: true)
        for folder in [directory + "/ck", directory + "/empty"] {  // missing, and present but empty
            let config = try ResumeTests.config(prefix: prefix, extra: [("save", .string(folder)), ("load", .string(folder))])
            let first = try ResumeTests.trainer(config)
            #expect(first.iteration == 0)
            #expect(first.loadWarning == "could not find the metadata file \(folder)/latest_checkpointed_iteration.txt; "
                    + "will not load any checkpoints and will start from random")
            #expect(try first.step().loss == freshLoss)
            try first.save(to: folder)
            // The second launch of the same script resumes.
            let second = try ResumeTests.trainer(config)
            #expect(second.iteration == 1 && second.loadWarning == nil)
        }
    }

    @Test func aFolderWithCheckpointsButNoTrackerIsNotOverwritten() throws {
        let (directory, prefix) = try ResumeTests.corpus()
        let folder = directory + "/ck"
        let trainer = try ResumeTests.trainer(try ResumeTests.config(prefix: prefix))
        try trainer.save(to: folder)
        try FileManager.default.removeItem(atPath: folder + "/latest_checkpointed_iteration.txt")
        let config = try ResumeTests.config(prefix: prefix, extra: [("load", .string(folder))])
        #expect(Self.message { _ = try ResumeTests.trainer(config) }
                == "checkpoint \(folder): it holds iter_0000000 but no latest_checkpointed_iteration.txt; write the iteration "
                + "to load into latest_checkpointed_iteration.txt, or give an empty --load folder to start from scratch")
    }

    @Test func missingPartsAreNamed() throws {
        let (directory, prefix) = try ResumeTests.corpus()
        let folder = directory + "/ck"
        let trainer = try ResumeTests.trainer(try ResumeTests.config(prefix: prefix))
        try trainer.save(to: folder)
        let tracker = folder + "/latest_checkpointed_iteration.txt"

        // The tracker names an iteration whose folder is gone.
        try AtomicFile.write(Array("7\n".utf8), to: tracker)
        let missingIteration = "checkpoint \(folder): latest_checkpointed_iteration.txt names iteration 7 but its folder iter_0000007 is missing"
        #expect(Self.message { _ = try Checkpoint.loadModel(from: folder) } == missingIteration)
        let resume = try ResumeTests.config(prefix: prefix, extra: [("load", .string(folder))])
        #expect(Self.message { _ = try ResumeTests.trainer(resume) } == missingIteration)

        // The rank file was deleted: named, without a Foundation error dump.
        try AtomicFile.write(Array("0\n".utf8), to: tracker)
        let file = folder + "/iter_0000000/mp_rank_00/model_optim_rng.safetensors"
        try FileManager.default.removeItem(atPath: file)
        #expect(Self.message { _ = try Checkpoint.loadModel(from: folder) } == "checkpoint \(file): the rank file is missing")

        // The rank folder was deleted.
        try FileManager.default.removeItem(atPath: folder + "/iter_0000000/mp_rank_00")
        #expect(Self.message { _ = try Checkpoint.loadModel(from: folder) }
                == "checkpoint \(folder)/iter_0000000: the folder of the first rank is missing (neither mp_rank_00 nor mp_rank_00_000)")

        // A --load folder that does not exist, for evaluate and generate.
        #expect(Self.message { _ = try Checkpoint.loadModel(from: directory + "/nowhere") }
                == "checkpoint \(directory)/nowhere: the folder does not exist")
    }

    /// Metadata that is a number but not a possible one (a layout size below 1, a negative count)
    /// is named when the checkpoint is opened, before any size is computed from it.
    @Test func impossibleMetadataNumbersAreNamed() throws {
        let (directory, prefix) = try ResumeTests.corpus()
        let folder = directory + "/ck"
        try ResumeTests.trainer(try ResumeTests.config(prefix: prefix)).save(to: folder)
        let file = folder + "/iter_0000000/mp_rank_00/model_optim_rng.safetensors"
        let original = try MappedFile.read(path: file)
        /// The rank file with `key`'s value replaced by one of the same length (the header keeps its size).
        func tamper(_ key: String, _ value: String) throws {
            let pattern = Array("\"\(key)\":\"".utf8)
            let start = try #require((0...(original.count - pattern.count)).first { Array(original[$0..<($0 + pattern.count)]) == pattern })
                + pattern.count
            let end = try #require(original[start...].firstIndex(of: UInt8(ascii: "\"")))
            try #require(end - start == value.utf8.count)
            try AtomicFile.write(Array(original[..<start]) + Array(value.utf8) + Array(original[end...]), to: file)
        }
        try tamper("tensor_model_parallel_size", "0")
        #expect(Self.message { _ = try Checkpoint.loadModel(from: folder) }
                == "checkpoint \(file): metadata tensor_model_parallel_size is 0; it must be at least 1")
        try tamper("seed", "-123")
        let resume = try ResumeTests.config(prefix: prefix, extra: [("load", .string(folder))])
        #expect(Self.message { _ = try ResumeTests.trainer(resume) } == "checkpoint \(file): metadata seed is -123; it must be at least 0")
    }

    /// fp16's hysteresis tracker counts down past 0 on overflows in a row (as Megatron's), so a
    /// negative one in a checkpoint is a state to resume, not damage.
    @Test func aNegativeHysteresisTrackerIsRead() throws {
        let state = Checkpoint.State(iteration: 40, consumedSamples: 160, consumedValidSamples: 0, optimizerStep: 27, seed: 1234,
                                     precision: .fp16,
                                     lossScaler: LossScaler.State(scale: 65536, growthTracker: 0, hysteresisTracker: -13))
        let path = FileManager.default.temporaryDirectory.path + "/state-\(UInt32.random(in: 0...UInt32.max)).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let values: [Float] = [0]
        try values.withUnsafeBufferPointer { buffer in
            try SafeTensorsFile.write([(name: "x", shape: [1], values: buffer)], metadata: state.metadata, to: path)
        }
        #expect(try Checkpoint.State(try SafeTensorsFile(path: path), path: path) == state)
    }
}
