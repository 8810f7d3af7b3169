import Foundation
import Models
import Optimizer
import Parameters
import Testing
@testable import TorchFormat
@testable import Training

/// The parts of reading a Megatron-LM optimizer state that no fixture run reaches: a torch_dist
/// buffer whose bucket closes off the 64-element grid before a parameter of its own bucket,
/// `--loss-scale`'s static scaler, and args or scheduler entries that contradict each other.
@Suite struct MegatronLMStateEdgeTests {
    /// Megatron-LM args holding `entries`.
    static func arguments(_ entries: [String: PickleValue]) throws -> MegatronLMArguments {
        let args = PickleDict(), root = PickleDict()
        for (key, value) in entries { args.set(.string(key), value) }
        root.set(.string("args"), .dict(args))
        return try MegatronLMArguments(state: .dict(root), path: "args")
    }

    static func file() throws -> TorchFile {
        try TorchFile(path: MegatronLMCheckpointTests.fixtures + "/tp1-fp16-optim/iter_0000003/mp_rank_00/model_optim_rng.pt")
    }

    /// The first stage's word embedding takes a bucket of its own: the bucket before it closes at
    /// the next multiple of 64 after the position embedding (40 elements at 64), 128, not at 104.
    @Test func aBucketClosedForAnOwnBucketParameterEndsOnTheGrid() throws {
        let chunks: [[Int: [Int]]] = [[0: [48], 48: [16], 64: [40], 104: [24]], [0: [100]]]
        let places = try MegatronLMCheckpoint.bucketPlaces(chunks: chunks, sizes: [128, 100], name: "buffer", folder: "folder",
                                                           order: ["embedding", "position", "bias"], counts: [100, 40, 48],
                                                           shardSizes: [Int.max, Int.max])
        #expect(places.map(\.bucket) == [1, 0, 0] && places.map(\.start) == [0, 64, 0])
        // A parameter that is not its chunk is refused, not read from the wrong place.
        #expect(throws: TrainingError.self) {
            _ = try MegatronLMCheckpoint.bucketPlaces(chunks: chunks, sizes: [128, 100], name: "buffer", folder: "folder",
                                                      order: ["embedding", "position", "bias"], counts: [100, 56, 48],
                                                      shardSizes: [Int.max, Int.max])
        }
    }

    /// `--loss-scale S`: megatron-core's ConstantGradScaler saves nothing; the static scale comes
    /// from the args. A dynamic scaler's damaged state and fp16 with bf16 are errors.
    @Test func lossScalerStates() throws {
        let file = try Self.file()
        let fixed = try MegatronLMCheckpoint.lossScalerState(nil, in: file, arguments: try Self.arguments(["fp16": .bool(true), "loss_scale": .float(1024)]),
                                                             precision: .fp16)
        #expect(fixed == LossScaler.State(scale: 1024, growthTracker: 0, hysteresisTracker: 1, isDynamic: false))
        let dynamic = try Self.arguments(["fp16": .bool(true), "loss_scale": .none])
        let saved = PickleDict()
        saved.set(.string("scale"), .float(-2))
        saved.set(.string("growth_tracker"), .int(0))
        saved.set(.string("hysteresis_tracker"), .int(2))
        for state in [PickleValue.dict(saved), nil] {
            #expect { _ = try MegatronLMCheckpoint.lossScalerState(state, in: file, arguments: dynamic, precision: .fp16) }
                throws: { "\($0)".contains("grad_scaler") }
        }
        #expect(try MegatronLMCheckpoint.lossScalerState(nil, in: file, arguments: dynamic, precision: .bf16) == nil)
        #expect { _ = try MegatronLMCheckpoint.optimizerPrecision(try Self.arguments(["fp16": .bool(true), "bf16": .bool(true)]), folder: "f") }
            throws: { "\($0)".contains("both --bf16 and --fp16") }
    }

    /// The scheduler cannot have advanced over more samples than the run consumed.
    @Test func theScheduleStaysWithinTheConsumedSamples() throws {
        let layout = ParameterLayout([ParameterSpec(name: "w", shape: [2], weightDecay: false)])
        let arguments = try Self.arguments(["consumed_train_samples": .int(6)])
        for (steps, accepted) in [(PickleValue.int(4), true), (.int(7), false), (.string("4"), false), (.int(-1), false)] {
            let scheduler = PickleDict()
            scheduler.set(.string("num_steps"), steps)
            let state = try? MegatronLMOptimizerState(m: ParameterStore(layout: layout), v: ParameterStore(layout: layout), step: 2,
                                                      arguments: arguments, distributed: false, precision: .fp32, lossScaler: nil,
                                                      scheduler: .dict(scheduler))
            #expect((state != nil) == accepted, "num_steps \(steps)")
            if accepted { #expect(state?.scheduledSamples == 4) }
        }
    }
}
