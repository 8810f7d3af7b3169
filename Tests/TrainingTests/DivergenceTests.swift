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

/// A diverged run never looks healthy: a non-finite loss or gradient norm stops training with an
/// error naming the iteration (`--check-for-nan-in-loss-and-grad`, on by default) or, with the
/// check off, skips the update and says so; non-finite weights are never saved nor loaded.
@Suite(.serialized) struct DivergenceTests {
    /// Sets every value of the final LayerNorm's weight to NaN (the loss and every gradient follow).
    static func poison(_ trainer: Trainer) {
        let store = trainer.model.params
        let index = store.layout.specs.firstIndex { $0.name.hasSuffix("final_layernorm.weight") }!
        store.pointer(at: index).update(repeating: .nan, count: store.layout.specs[index].count)
    }

    /// The weights' bit patterns (NaN compares unequal to itself).
    static func bits(_ store: ParameterStore) -> [UInt32] {
        Array(UnsafeBufferPointer(start: store.buffer.pointer, count: store.layout.totalCount)).map(\.bitPattern)
    }

    @Test func aNonFiniteLossStopsTrainingNamingTheIteration() throws {
        let (_, prefix) = try ResumeTests.corpus()
        let trainer = try ResumeTests.trainer(try ResumeTests.config(prefix: prefix))
        _ = try trainer.step()
        Self.poison(trainer)
        let before = Self.bits(trainer.model.params)
        do {
            _ = try trainer.step()
            Issue.record("a NaN loss did not stop training")
        } catch let TrainingError.diverged(iteration, loss, gradNorm) {
            #expect(iteration == 2)
            #expect(loss.isNaN && gradNorm.isNaN)
            let text = TrainingError.diverged(iteration: iteration, loss: loss, gradNorm: gradNorm).description
            #expect(text.contains("iteration 2") && text.contains("lm loss nan") && text.contains("--no-check-for-nan-in-loss-and-grad"))
        }
        #expect(trainer.iteration == 1)
        #expect(Self.bits(trainer.model.params) == before, "no update after a non-finite norm")
    }

    @Test func aHugeLearningRateDivergesWithinAFewIterations() throws {
        let (_, prefix) = try ResumeTests.corpus()
        let config = try ResumeTests.config(prefix: prefix, extra: [("lr", .number(1e30)), ("min-lr", .number(0)),
                                                                      ("lr-warmup-iters", .number(0))])
        let trainer = try ResumeTests.trainer(config)
        var failure: (any Error)?
        while failure == nil && trainer.iteration < 4 {
            do { _ = try trainer.step() } catch { failure = error }
        }
        guard case let TrainingError.diverged(iteration, _, _)? = failure else {
            Issue.record("lr 1e30 trained on without an error: \(String(describing: failure))")
            return
        }
        #expect(iteration >= 2 && iteration <= 4)
    }

    @Test func withoutTheCheckTheIterationIsSkippedAndCounted() throws {
        let (_, prefix) = try ResumeTests.corpus()
        let config = try ResumeTests.config(prefix: prefix, extra: [("no-check-for-nan-in-loss-and-grad", .bool(true))])
        #expect(!config.checkForNaNInLossAndGrad)
        let trainer = try ResumeTests.trainer(config)
        Self.poison(trainer)
        let before = Self.bits(trainer.model.params)
        let stats = try trainer.step()
        #expect(stats.skipped && stats.loss.isNaN && stats.gradNorm.isNaN)
        #expect(trainer.iteration == 1 && stats.consumedSamples == 4)
        #expect(Self.bits(trainer.model.params) == before, "a skipped iteration changes no weight")
    }

    @Test func nonFiniteWeightsAreNeverSavedNorLoaded() throws {
        let (directory, prefix) = try ResumeTests.corpus()
        let checkpoints = directory + "/checkpoints"
        let config = try ResumeTests.config(prefix: prefix)
        let trainer = try ResumeTests.trainer(config)
        _ = try trainer.step()
        try trainer.save(to: checkpoints)
        let good = try MappedFile.read(path: checkpoints + "/iter_0000001/mp_rank_00/model_optim_rng.safetensors")

        // Saving refuses, names the tensor, and leaves the saved iteration as it was.
        Self.poison(trainer)
        #expect(throws: TrainingError.checkpoint(path: checkpoints, reason: "refusing to save iteration 1: "
                                                     + "tensor decoder.final_layernorm.weight holds nan (element 0)")) {
            try trainer.save(to: checkpoints)
        }
        #expect(try MappedFile.read(path: checkpoints + "/iter_0000001/mp_rank_00/model_optim_rng.safetensors") == good)
        #expect(!FileManager.default.fileExists(atPath: checkpoints + "/iter_0000001.tmp"))

        // A NaN checkpoint written around the check (an older build, an edit) is refused by every
        // load path, naming the file and the first tensor at fault.
        let rankDirectory = checkpoints + "/iter_0000001/mp_rank_00"
        let metadata = try SafeTensorsFile(path: rankDirectory + "/model_optim_rng.safetensors").metadata
        let adam = trainer.optimizer as! AdamWOptimizer
        try CheckpointFiles.writeModel(to: rankDirectory, params: trainer.model.params, moments: (adam.m, adam.v), metadata: metadata)
        let expected = "checkpoint \(rankDirectory)/model_optim_rng.safetensors: tensor decoder.final_layernorm.weight holds nan (element 0)"
        for (what, load) in [("loadModel", { _ = try Checkpoint.loadModel(from: checkpoints) }),
                             ("MergedCheckpoint", { _ = try MergedCheckpoint(directory: checkpoints, moments: true) }),
                             ("train --load", { _ = try ResumeTests.trainer(try ResumeTests.config(prefix: prefix, extra: [("load", .string(checkpoints))])) })]
            as [(String, () throws -> Void)] {
            do {
                try load()
                Issue.record("\(what) loaded NaN weights")
            } catch {
                #expect("\(error)".hasPrefix(expected), "\(what): \(error)")
            }
        }
    }
}
