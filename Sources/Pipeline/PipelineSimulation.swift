/// Runs every stage's instruction list of a schedule against the others, as an executor would
/// with buffered sends and blocking receives, and checks it: each (micro-batch, chunk) runs one
/// forward then one backward on its stage, every send has its receive and every receive its send,
/// and the stages never all wait on each other (deadlock). Reports the time the batch takes when
/// a forward of a whole stage costs `forwardTime` and a backward `backwardTime` (a chunk's share is
/// `1/v` of that), the bubble fraction, and each stage's peak number of activations held (one per
/// forward of a (micro-batch, chunk) whose backward has not run).
public struct PipelineSimulation: Sendable {
    /// Time from the first instruction to the last on any stage.
    public let makespan: Double
    /// Idle share relative to the work: `(makespan - m (tf + tb)) / (m (tf + tb))`.
    public let bubbleFraction: Double
    /// Per stage, the most forwards (of any chunk) whose backward had not run yet.
    public let peakActivations: [Int]
    /// Point-to-point messages sent.
    public let messages: Int

    private enum Message: Hashable {
        case activation(microBatch: Int, virtualStage: Int)
        case gradient(microBatch: Int, virtualStage: Int)
    }

    public init(_ schedule: PipelineSchedule, forwardTime: Double = 1, backwardTime: Double = 2) throws(PipelineScheduleError) {
        try self.init(lists: (0..<schedule.stages).map { schedule.instructions(stage: $0) }, chunks: schedule.kind.chunks,
                      microBatches: schedule.microBatches, forwardTime: forwardTime, backwardTime: backwardTime)
    }

    /// Simulates arbitrary lists, one per stage, with `chunks` model chunks per stage.
    public init(lists: [[PipelineInstruction]], chunks v: Int, microBatches m: Int,
                forwardTime: Double = 1, backwardTime: Double = 2) throws(PipelineScheduleError) {
        let p = lists.count
        for (stage, list) in lists.enumerated() { try Self.checkWork(list, stage: stage, microBatches: m, chunks: v) }

        var clock = [Double](repeating: 0, count: p)
        var next = [Int](repeating: 0, count: p)
        var held = [Int](repeating: 0, count: p), peak = [Int](repeating: 0, count: p)
        var inFlight = [Message: Double]()  // sent, not yet received: arrival time
        var messages = 0
        while next.enumerated().contains(where: { $0.element < lists[$0.offset].count }) {
            var progressed = false
            for stage in 0..<p {
                run: while next[stage] < lists[stage].count {
                    let instruction = lists[stage][next[stage]]
                    let s = instruction.chunk * p + stage, k = instruction.microBatch
                    switch instruction {
                    case .receiveActivation, .receiveGradient:
                        let key: Message = if case .receiveActivation = instruction {
                            .activation(microBatch: k, virtualStage: s)
                        } else {
                            .gradient(microBatch: k, virtualStage: s)
                        }
                        guard let arrival = inFlight.removeValue(forKey: key) else { break run }  // blocked
                        clock[stage] = max(clock[stage], arrival)
                    case .forward:
                        clock[stage] += forwardTime / Double(v)
                        held[stage] += 1
                        peak[stage] = max(peak[stage], held[stage])
                    case .backward:
                        clock[stage] += backwardTime / Double(v)
                        held[stage] -= 1
                    case .sendActivation, .sendGradient:
                        let key: Message = if case .sendActivation = instruction {
                            .activation(microBatch: k, virtualStage: s + 1)
                        } else {
                            .gradient(microBatch: k, virtualStage: s - 1)
                        }
                        guard inFlight.updateValue(clock[stage], forKey: key) == nil else {
                            throw .invalid("stage \(stage) sends \(instruction) while the same message is still in flight")
                        }
                        messages += 1
                    }
                    next[stage] += 1
                    progressed = true
                }
            }
            if !progressed {
                let waiting = (0..<p).compactMap { stage in
                    next[stage] < lists[stage].count ? "stage \(stage) at \(lists[stage][next[stage]])" : nil
                }
                throw .invalid("the schedule deadlocks: " + waiting.joined(separator: ", "))
            }
        }
        guard inFlight.isEmpty else {
            throw .invalid("\(inFlight.count) messages are sent but never received, e.g. \(inFlight.keys.first!)")
        }
        makespan = clock.max() ?? 0
        let work = Double(m) * (forwardTime + backwardTime)
        bubbleFraction = (makespan - work) / work
        peakActivations = peak
        self.messages = messages
    }

    /// Every (micro-batch, chunk) has exactly one forward and, after it, one backward.
    private static func checkWork(_ list: [PipelineInstruction], stage: Int, microBatches m: Int, chunks v: Int) throws(PipelineScheduleError) {
        var forwarded = Set<[Int]>(), backwarded = Set<[Int]>()
        for instruction in list {
            guard (0..<m).contains(instruction.microBatch), (0..<v).contains(instruction.chunk) else {
                throw .invalid("stage \(stage) has \(instruction) outside \(m) micro-batches and \(v) chunks")
            }
            let item = [instruction.microBatch, instruction.chunk]
            switch instruction {
            case .forward:
                guard forwarded.insert(item).inserted else { throw .invalid("stage \(stage) runs \(instruction) twice") }
            case .backward:
                guard forwarded.contains(item) else { throw .invalid("stage \(stage) runs \(instruction) before its forward") }
                guard backwarded.insert(item).inserted else { throw .invalid("stage \(stage) runs \(instruction) twice") }
            default: break
            }
        }
        guard forwarded.count == m * v, backwarded.count == m * v else {
            throw .invalid("stage \(stage) runs \(forwarded.count) forwards and \(backwarded.count) backwards, expected \(m * v) of each")
        }
    }
}
