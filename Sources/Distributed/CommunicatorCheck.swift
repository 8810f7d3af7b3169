/// A backend-independent check of a `Communicator`: every operation on rank-dependent inputs,
/// compared with the result its definition gives. The unit tests run it on rank threads and
/// `megatron bench collectives` under `mpirun`, so both backends answer to the same definitions.
public enum CommunicatorCheck {
    /// Runs every operation on `world` (collective: all ranks must call it) and returns a
    /// description of each result that differs from its definition; empty when all agree.
    public static func run(_ world: Communicator) -> [String] {
        var failures = [String]()
        func expect(_ name: String, _ got: [Float], _ want: [Float]) {
            if got != want { failures.append("rank \(world.rank): \(name) gave \(got), expected \(want)") }
        }
        let size = world.size, rank = world.rank
        let n = Float(size), r = Float(rank)
        let rankSum = n * (n - 1) / 2

        let count = 7
        var sum = (0..<count).map { Float($0) + 10 * r }
        world.allReduce(&sum, count: count, operation: .sum)
        expect("allReduce(sum)", sum, (0..<count).map { Float($0) * n + 10 * rankSum })

        var largest = (0..<count).map { $0 == 3 ? -r : r }
        world.allReduce(&largest, count: count, operation: .max)
        expect("allReduce(max)", largest, (0..<count).map { $0 == 3 ? 0 : n - 1 })

        // 2^-40 + rank sums exactly in any order in Float64, not in Float32.
        let tiny = 0x1p-40
        let doubles = world.allReduce([tiny + Double(rank), 1.5], operation: .sum)
        if doubles != [tiny * Double(size) + Double(rankSum), 1.5 * Double(size)] {
            failures.append("rank \(rank): allReduce(Double) gave \(doubles)")
        }

        let mine = (0..<3).map { Float($0) + 100 * r }
        var gathered = [Float](repeating: -1, count: 3 * size)
        world.allGather(send: mine, receive: &gathered, count: 3)
        expect("allGather", gathered, (0..<size).flatMap { q in (0..<3).map { Float($0) + 100 * Float(q) } })

        let scatterInput = (0..<(2 * size)).map { Float($0) * (r + 1) }
        var scattered = [Float](repeating: -1, count: 2)
        world.reduceScatter(send: scatterInput, receive: &scattered, count: 2)
        let weight = n * (n + 1) / 2  // the sum of (q + 1) over ranks q
        expect("reduceScatter", scattered, [Float(2 * rank) * weight, Float(2 * rank + 1) * weight])

        // In place: each rank's block q holds q + 10 r (block q of rank q gathered), then 1 + r
        // times 0, 1, 2, ... (rank r's own block reduced).
        var inPlace = (0..<(3 * size)).map { Float($0 / 3) + 10 * r }
        world.allGatherInPlace(&inPlace, count: 3)
        expect("allGatherInPlace", inPlace, (0..<(3 * size)).map { Float($0 / 3) * 11 })
        var reducedInPlace = (0..<(2 * size)).map { Float($0) * (r + 1) }
        world.reduceScatterInPlace(&reducedInPlace, count: 2)
        expect("reduceScatterInPlace", Array(reducedInPlace[(2 * rank)..<(2 * rank + 2)]),
               [Float(2 * rank) * weight, Float(2 * rank + 1) * weight])

        var broadcast = [r, r, r]
        world.broadcast(&broadcast, count: 3, root: size - 1)
        expect("broadcast", broadcast, [n - 1, n - 1, n - 1])

        // A ring of buffered sends: every rank sends before it receives, twice with two tags
        // received in the opposite order.
        world.send([r], count: 1, to: (rank + 1) % size, tag: 7)
        world.send([r + 0.5], count: 1, to: (rank + 1) % size, tag: 8)
        var received: [Float] = [-1], second: [Float] = [-1]
        world.receive(&second, count: 1, from: (rank + size - 1) % size, tag: 8)
        world.receive(&received, count: 1, from: (rank + size - 1) % size, tag: 7)
        let previous = Float((rank + size - 1) % size)
        expect("send/receive", received + second, [previous, previous + 0.5])

        // Even and odd ranks form two groups, ordered by descending key.
        let half = world.split(color: rank % 2, key: -rank)
        let members = stride(from: rank % 2, to: size, by: 2).reversed().map { $0 }
        var value = [r]
        half.allReduce(&value, count: 1, operation: .sum)
        expect("split members", half.members.map(Float.init), members.map { Float(world.members[$0]) })
        expect("split rank", [Float(half.rank)], [Float(members.firstIndex(of: rank)!)])
        expect("split allReduce", value, [Float(members.reduce(0, +))])

        world.barrier()
        return failures
    }
}
