import Testing
@testable import Distributed

@Suite struct ThreadCommunicatorTests {
    @Test(arguments: [1, 2, 3, 4]) func collectivesMatchTheirDefinitions(size: Int) throws {
        let results = try ThreadCommunicator.run(size: size) { comm -> [[Float]] in
            let r = Float(comm.rank)
            let count = 7
            var sum = (0..<count).map { Float($0) + 10 * r }
            comm.allReduce(&sum, count: count, operation: .sum)
            var largest = (0..<count).map { $0 == 3 ? -r : r }
            comm.allReduce(&largest, count: count, operation: .max)
            let mine = (0..<3).map { Float($0) + 100 * r }
            var gathered = [Float](repeating: -1, count: 3 * comm.size)
            comm.allGather(send: mine, receive: &gathered, count: 3)
            let scatterInput = (0..<(2 * comm.size)).map { Float($0) * (r + 1) }
            var scattered = [Float](repeating: -1, count: 2)
            comm.reduceScatter(send: scatterInput, receive: &scattered, count: 2)
            var broadcast = [r, r, r]
            comm.broadcast(&broadcast, count: 3, root: comm.size - 1)
            let doubles = comm.allReduce([1e-12 + Double(comm.rank), 1.5], operation: .sum)
            comm.barrier()
            return [sum, largest, gathered, scattered, broadcast, doubles.map { Float($0) }]
        }
        let n = Float(size)
        let rankSum = n * (n - 1) / 2
        for result in results {
            let sums: [Float] = (0..<7).map { Float($0) * n + 10 * rankSum }
            let maxima: [Float] = (0..<7).map { $0 == 3 ? 0 : n - 1 }
            let gathered: [Float] = (0..<size).flatMap { r in (0..<3).map { Float($0) + 100 * Float(r) } }
            #expect(result[0] == sums)
            #expect(result[1] == maxima)
            #expect(result[2] == gathered)
            #expect(result[5] == [Float(1e-12 * Double(size) + Double(rankSum)), 1.5 * n])
        }
        let weights = (1...size).reduce(0, +)  // sum of (r + 1)
        let w = Float(weights)
        for (rank, result) in results.enumerated() {
            let first = Float(2 * rank) * w, second = Float(2 * rank + 1) * w
            #expect(result[3] == [first, second])
            #expect(result[4] == [n - 1, n - 1, n - 1])
        }
    }

    @Test func pointToPointAndSplit() throws {
        let results = try ThreadCommunicator.run(size: 4) { comm -> [Float] in
            // Ring: send to the next rank, receive from the previous.
            comm.send([Float(comm.rank)], count: 1, to: (comm.rank + 1) % 4, tag: 7)
            var received: [Float] = [-1]
            comm.receive(&received, count: 1, from: (comm.rank + 3) % 4, tag: 7)
            // Even and odd ranks form two groups, ordered by descending key.
            let half = comm.split(color: comm.rank % 2, key: -comm.rank)
            var value = [Float(comm.rank)]
            half.allReduce(&value, count: 1, operation: .sum)
            return [received[0], value[0], Float(half.rank), Float(half.size)] + half.members.map(Float.init)
        }
        #expect(results[0] == [3, 2, 1, 2, 2, 0])
        #expect(results[1] == [0, 4, 1, 2, 3, 1])
        #expect(results[2] == [1, 2, 0, 2, 2, 0])
        #expect(results[3] == [2, 4, 0, 2, 3, 1])
    }
}

@Suite struct RankGridTests {
    @Test func megatronOrder() throws {
        // REFERENCE section 3: 16 ranks, TP 2, PP 4, DP 2.
        let grid = try RankGrid(world: 16, tensorParallel: 2, pipelineParallel: 4)
        #expect(grid.dataParallel == 2)
        #expect(grid.tensorGroup(of: 3) == [2, 3])
        #expect(grid.dataGroup(of: 1) == [1, 3])
        #expect(grid.pipelineGroup(of: 1) == [1, 5, 9, 13])
        #expect(grid.embeddingGroup(of: 5) == [1, 13])
        #expect(grid.coordinates(of: 13) == (tp: 1, dp: 0, pp: 3))
        for rank in 0..<16 {
            let c = grid.coordinates(of: rank)
            #expect(grid.rank(tp: c.tp, dp: c.dp, pp: c.pp) == rank)
        }
    }

    @Test func layoutsThatDoNotDivideAreErrors() throws {
        #expect(throws: LayoutError.self) { try RankGrid(world: 6, tensorParallel: 4, pipelineParallel: 1) }
        let grid = try RankGrid(world: 8, tensorParallel: 4, pipelineParallel: 1)
        #expect(throws: LayoutError.invalid("--tensor-model-parallel-size 4 does not divide --num-attention-heads 6")) {
            try grid.validate(heads: 6, hidden: 384, paddedVocabulary: 50304, layers: 6, globalBatchSize: 8, microBatchSize: 1)
        }
        #expect(throws: LayoutError.self) {
            try grid.validate(heads: 8, hidden: 384, paddedVocabulary: 50304, layers: 6, globalBatchSize: 5, microBatchSize: 1)
        }
        try grid.validate(heads: 8, hidden: 384, paddedVocabulary: 50304, layers: 6, globalBatchSize: 8, microBatchSize: 2)
    }
}
