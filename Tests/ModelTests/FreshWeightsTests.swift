import Distributed
import Models
import Parameters
import Testing

/// A tensor- or pipeline-parallel rank's fresh weights are its shards of the whole model made
/// from the same seed (drawn here one whole tensor at a time): the weights a rank's model starts
/// with, and those `forEachFreshTensor` hands the distributed optimizer, equal what
/// `forEachShard` slices from `freshWeights`, bit for bit, on every (TP rank, stage).
@Suite struct FreshWeightsTests {
    @Test(arguments: [false, true])
    func everyRankStartsFromItsShardsOfTheWholeModel(untied: Bool) throws {
        let config = GPTConfig(numLayers: 4, hiddenSize: 32, numAttentionHeads: 4, maxPositionEmbeddings: 16, vocabSize: 100,
                               untieEmbeddingsAndOutputWeights: untied)
        let whole = GPTModel.freshWeights(config, seed: 9)
        for stage in 0..<2 {
            let part = try GPTPipelinePart(numLayers: 4, stages: 2, stage: stage)
            let agree = try ThreadCommunicator.run(size: 2) { group -> [Bool] in
                let model = try GPTModel(config: config, seed: 9, tensorParallel: group, part: part)
                let total = model.layout.totalCount
                var expected = [Float](repeating: .nan, count: total), fresh = expected
                model.forEachShard(of: whole) { values, start, count in
                    for i in 0..<count { expected[start + i] = values[i] }
                }
                model.forEachFreshTensor { values, start, count in
                    for i in 0..<count { fresh[start + i] = values[i] }
                }
                let started = Array(UnsafeBufferPointer(start: model.params.buffer.pointer, count: total))
                func same(_ a: [Float]) -> Bool { zip(a, expected).allSatisfy { $0.bitPattern == $1.bitPattern } }
                return [same(started), same(fresh), !expected.contains { $0.isNaN }]
            }
            #expect(agree.allSatisfy { $0 == [true, true, true] }, "stage \(stage): \(agree)")
        }
    }
}
