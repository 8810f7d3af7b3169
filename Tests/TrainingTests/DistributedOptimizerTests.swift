import Distributed
import Kernels
import Optimizer
import Parameters
import Testing

/// ZeRO-1's in-place reduce-scatter and all-gather on stores padded to DP equal shards (as the
/// model's are; 19 values leave padding in the last shard): three updates of DP 2 and DP 3 give
/// every rank the weights AdamW gives one rank from the summed gradients.
@Suite struct DistributedOptimizerTests {
    @Test(arguments: [2, 3])
    func updatesAsAdamWOnTheSummedGradients(dataParallel d: Int) throws {
        let layout = ParameterLayout([ParameterSpec(name: "w", shape: [5, 3], weightDecay: true),
                                      ParameterSpec(name: "b", shape: [4], weightDecay: false)])  // 19 values
        let n = layout.totalCount
        let shard = (n + d - 1) / d
        @Sendable func start(_ store: ParameterStore) { for i in 0..<n { store.buffer.pointer[i] = Float(i % 7) * 0.1 - 0.3 } }
        // Rank r's gradient of step s: different on every rank, element and step.
        @Sendable func gradient(rank: Int, step: Int, _ i: Int) -> Float { Float((i * 13 + rank * 5 + step * 3) % 11) * 0.05 - 0.25 }
        let hyper = { var h = AdamW.Hyperparameters(learningRate: 0.01); h.weightDecay = 0.1; return h }()

        let reference = ParameterStore(layout: layout), summed = ParameterStore(layout: layout)
        start(reference)
        let adam = AdamWOptimizer(layout: layout, hyperparameters: hyper)
        for step in 0..<3 {
            for i in 0..<n { summed.buffer.pointer[i] = (0..<d).reduce(Float(0)) { $0 + gradient(rank: $1, step: step, i) } }
            adam.update(params: reference, grads: summed, gradScale: 1 / Float(d))
        }
        let expected = Array(UnsafeBufferPointer(start: reference.buffer.pointer, count: n))

        let ranks = try ThreadCommunicator.run(size: d) { world in
            let capacity = shard * d
            let params = ParameterStore(layout: layout, capacity: capacity), grads = ParameterStore(layout: layout, capacity: capacity)
            start(params)
            let optimizer = DistributedOptimizer(layout: layout, hyperparameters: hyper, data: world)
            for step in 0..<3 {
                for i in 0..<n { grads.buffer.pointer[i] = gradient(rank: world.rank, step: step, i) }
                _ = optimizer.reduceGradients(grads, data: world, bucketSize: n) { _ in 1 }
                optimizer.update(params: params, grads: grads, gradScale: 1 / Float(d))
            }
            return Array(UnsafeBufferPointer(start: params.buffer.pointer, count: n))
        }
        for weights in ranks {
            let worst = zip(weights, expected).map { abs($0 - $1) }.max()!
            #expect(worst < 1e-6, "DP \(d): worst difference \(worst)")
        }
    }
}
