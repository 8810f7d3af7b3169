import Kernels
import Testing
@testable import Distributed

@Suite struct ThreadCommunicatorTests {
    @Test(arguments: [1, 2, 3, 4]) func everyOperationMatchesItsDefinition(size: Int) throws {
        let failures = try ThreadCommunicator.run(size: size) { CommunicatorCheck.run($0) }
        #expect(failures.flatMap { $0 } == [])
    }

    @Test func reductionsGiveEveryRankTheSameBits() throws {
        let results = try ThreadCommunicator.run(size: 3) { comm -> [Float] in
            var values = (0..<1000).map { Float($0 + 1).squareRoot() * Float(comm.rank + 1) / 7 }
            comm.allReduce(&values, count: values.count, operation: .sum)
            return values
        }
        #expect(results[0] == results[1] && results[1] == results[2])
    }

    /// OpenBLAS's thread count is process-wide and a product's bits depend on it: while ranks run
    /// as threads, no rank may switch it (the attention then keeps it as set).
    @Test func rankThreadsKeepOpenBLASsThreadCount() throws {
        let allowed = try ThreadCommunicator.run(size: 2) { _ in SharedBLASThreads.maySwitch }
        #expect(allowed == [false, false])
    }

    @Test func theCheckCatchesABrokenBackend() throws {
        let failures = try ThreadCommunicator.run(size: 2) { CommunicatorCheck.run(SkippedBroadcast(base: $0)) }
        #expect(failures[0].contains { $0.contains("broadcast") })
    }
}

/// A communicator whose broadcast does nothing, to show that the check notices.
private final class SkippedBroadcast: Communicator {
    let base: Communicator
    init(base: Communicator) { self.base = base }
    var rank: Int { base.rank }
    var size: Int { base.size }
    var members: [Int] { base.members }
    func allReduce(_ buffer: UnsafeMutablePointer<Float>, count: Int, operation: ReduceOperation) {
        base.allReduce(buffer, count: count, operation: operation)
    }
    func allReduce(_ buffer: UnsafeMutablePointer<Double>, count: Int, operation: ReduceOperation) {
        base.allReduce(buffer, count: count, operation: operation)
    }
    func allGather(send: UnsafePointer<Float>, receive: UnsafeMutablePointer<Float>, count: Int) {
        base.allGather(send: send, receive: receive, count: count)
    }
    func reduceScatter(send: UnsafePointer<Float>, receive: UnsafeMutablePointer<Float>, count: Int) {
        base.reduceScatter(send: send, receive: receive, count: count)
    }
    func reduceScatterInPlace(_ buffer: UnsafeMutablePointer<Float>, count: Int) { base.reduceScatterInPlace(buffer, count: count) }
    func allGatherInPlace(_ buffer: UnsafeMutablePointer<Float>, count: Int) { base.allGatherInPlace(buffer, count: count) }
    func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) {}
    func send(_ buffer: UnsafePointer<Float>, count: Int, to destination: Int, tag: Int) {
        base.send(buffer, count: count, to: destination, tag: tag)
    }
    func receive(_ buffer: UnsafeMutablePointer<Float>, count: Int, from source: Int, tag: Int) {
        base.receive(buffer, count: count, from: source, tag: tag)
    }
    func barrier() { base.barrier() }
    func split(color: Int, key: Int) -> Communicator { base.split(color: color, key: key) }
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
        // Interleaving: the layers split into p x v chunks, the micro-batches into multiples of p.
        let interleaved = try RankGrid(tensorParallel: 1, dataParallel: 1, pipelineParallel: 2, virtualStages: 2)
        #expect(throws: LayoutError.invalid("--num-layers 6 does not divide into 2 pipeline stages x 2 model chunks")) {
            try interleaved.validate(heads: 8, hidden: 384, paddedVocabulary: nil, layers: 6)
        }
        #expect(throws: LayoutError.self) { try interleaved.validate(globalBatchSize: 3, microBatchSize: 1) }
        try interleaved.validate(globalBatchSize: 4, microBatchSize: 1)
        #expect(throws: LayoutError.self) { try RankGrid(tensorParallel: 1, dataParallel: 2, pipelineParallel: 1, virtualStages: 2) }
    }

    /// The live communicators of every rank are exactly the grid's groups, in the grid's order.
    @Test func parallelStateBuildsTheGridsGroups() throws {
        let grid = try RankGrid(world: 8, tensorParallel: 2, pipelineParallel: 2)
        let groups = try ThreadCommunicator.run(size: 8) { world in
            let state = try ParallelState(world: world, tensorParallel: 2, pipelineParallel: 2)
            return [state.tensor!.members, state.data!.members, state.pipeline!.members, state.embedding?.members ?? []]
        }
        for (rank, found) in groups.enumerated() {
            #expect(found == [grid.tensorGroup(of: rank), grid.dataGroup(of: rank), grid.pipelineGroup(of: rank),
                              grid.embeddingGroup(of: rank)])
        }
    }
}
