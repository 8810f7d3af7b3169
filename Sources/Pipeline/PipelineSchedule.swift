/// One step of a pipeline stage's instruction list (DeepSpeed-style: an executor interprets the
/// list; the schedule is data that can be printed, tested and simulated).
///
/// `microBatch` counts from 0 within the global batch; `chunk` is the model chunk of this stage
/// (always 0 without interleaving). With `v` chunks per stage over `p` stages, chunk `c` of stage
/// `r` is virtual stage `c p + r` of the `v p`-long pipeline.
public enum PipelineInstruction: Hashable, Sendable, CustomStringConvertible {
    /// Receive the input activation of a forward from the previous virtual stage.
    case receiveActivation(microBatch: Int, chunk: Int)
    /// Run a forward (the first virtual stage loads the micro-batch; the last computes the loss).
    case forward(microBatch: Int, chunk: Int)
    /// Send the output activation to the next virtual stage.
    case sendActivation(microBatch: Int, chunk: Int)
    /// Receive the gradient of the output activation from the next virtual stage.
    case receiveGradient(microBatch: Int, chunk: Int)
    /// Run a backward (the last virtual stage starts from the loss).
    case backward(microBatch: Int, chunk: Int)
    /// Send the gradient of the input activation to the previous virtual stage.
    case sendGradient(microBatch: Int, chunk: Int)

    public var microBatch: Int {
        switch self {
        case let .receiveActivation(k, _), let .forward(k, _), let .sendActivation(k, _),
             let .receiveGradient(k, _), let .backward(k, _), let .sendGradient(k, _): k
        }
    }

    public var chunk: Int {
        switch self {
        case let .receiveActivation(_, c), let .forward(_, c), let .sendActivation(_, c),
             let .receiveGradient(_, c), let .backward(_, c), let .sendGradient(_, c): c
        }
    }

    public var description: String {
        switch self {
        case let .receiveActivation(k, c): "recv-act(\(k),\(c))"
        case let .forward(k, c): "F(\(k),\(c))"
        case let .sendActivation(k, c): "send-act(\(k),\(c))"
        case let .receiveGradient(k, c): "recv-grad(\(k),\(c))"
        case let .backward(k, c): "B(\(k),\(c))"
        case let .sendGradient(k, c): "send-grad(\(k),\(c))"
        }
    }
}

/// The pipeline schedules of Megatron-LM / Narayanan et al. 2021.
public enum PipelineScheduleKind: Hashable, Sendable {
    /// All forwards, then all backwards (holds every micro-batch's activations).
    case gpipe
    /// One forward, one backward (PipeDream-Flush): warm-up forwards, steady 1F1B, cool-down
    /// backwards; a stage holds at most `p` micro-batches' activations.
    case oneForwardOneBackward
    /// 1F1B over `virtualStages` model chunks per stage: bubble `(p - 1) / (v m)`.
    case interleaved(virtualStages: Int)

    /// Model chunks per stage.
    public var chunks: Int {
        if case .interleaved(let v) = self { return v }
        return 1
    }
}

/// A schedule that cannot be built.
public enum PipelineScheduleError: Error, Equatable, CustomStringConvertible, Sendable {
    case invalid(String)
    public var description: String {
        switch self {
        case let .invalid(reason): reason
        }
    }
}

/// Builds each stage's instruction list.
public struct PipelineSchedule: Sendable {
    public let kind: PipelineScheduleKind
    public let stages: Int
    public let microBatches: Int

    /// Checks the combination: positive sizes; interleaving needs at least 2 stages, 2 chunks
    /// and a number of micro-batches that is a multiple of the stages (as Megatron).
    public init(kind: PipelineScheduleKind, stages: Int, microBatches: Int) throws(PipelineScheduleError) {
        guard stages >= 1 else { throw .invalid("the pipeline needs at least one stage, got \(stages)") }
        guard microBatches >= 1 else { throw .invalid("the pipeline needs at least one micro-batch, got \(microBatches)") }
        if case .interleaved(let v) = kind {
            guard v >= 2 else { throw .invalid("an interleaved schedule needs at least 2 model chunks per stage, got \(v)") }
            guard stages >= 2 else { throw .invalid("an interleaved schedule needs at least 2 pipeline stages, got \(stages)") }
            guard microBatches % stages == 0 else {
                throw .invalid("an interleaved schedule needs the number of micro-batches (\(microBatches)) to be a multiple of the pipeline stages (\(stages))")
            }
        }
        self.kind = kind
        self.stages = stages
        self.microBatches = microBatches
    }

    /// The instruction list of stage `stage` (0-based).
    public func instructions(stage: Int) -> [PipelineInstruction] {
        precondition(stage >= 0 && stage < stages, "stage \(stage) outside 0..<\(stages)")
        let (forwards, backwards) = order(stage: stage)
        let warmup: Int
        switch kind {
        case .gpipe: warmup = forwards.count
        case .oneForwardOneBackward: warmup = min(stages - stage - 1, microBatches)
        case .interleaved(let v):
            // Megatron: all forwards first when m == p; otherwise enough forwards to fill the
            // interleaved pipeline before the first backward reaches this stage.
            warmup = microBatches == stages ? forwards.count : min((stages - stage - 1) * 2 + (v - 1) * stages, forwards.count)
        }
        var list = [PipelineInstruction]()
        for item in forwards[..<warmup] { list += forwardSteps(item, stage: stage) }
        for k in 0..<(forwards.count - warmup) {
            list += forwardSteps(forwards[warmup + k], stage: stage)
            list += backwardSteps(backwards[k], stage: stage)
        }
        for item in backwards[(forwards.count - warmup)...] { list += backwardSteps(item, stage: stage) }
        return list
    }

    /// The (micro-batch, chunk) order of this stage's forwards and of its backwards. With
    /// interleaving, forwards run `p` micro-batches through chunk 0, then the same through chunk
    /// 1, ..., then the next `p` micro-batches; backwards go through the chunks in reverse.
    func order(stage: Int) -> (forwards: [(Int, Int)], backwards: [(Int, Int)]) {
        let v = kind.chunks
        guard v > 1 else {
            let all = (0..<microBatches).map { ($0, 0) }
            return (all, all)
        }
        let total = microBatches * v
        let forwards = (0..<total).map { k in ((k / (stages * v)) * stages + k % stages, (k / stages) % v) }
        let backwards = (0..<total).map { k in ((k / (stages * v)) * stages + k % stages, v - 1 - (k / stages) % v) }
        return (forwards, backwards)
    }

    /// Virtual stage of chunk `chunk` on stage `stage`.
    public func virtualStage(stage: Int, chunk: Int) -> Int { chunk * stages + stage }

    /// Number of virtual stages (`p v`).
    public var virtualStages: Int { stages * kind.chunks }

    private func forwardSteps(_ item: (Int, Int), stage: Int) -> [PipelineInstruction] {
        let (k, c) = item
        let s = virtualStage(stage: stage, chunk: c)
        var steps = [PipelineInstruction]()
        if s > 0 { steps.append(.receiveActivation(microBatch: k, chunk: c)) }
        steps.append(.forward(microBatch: k, chunk: c))
        if s < virtualStages - 1 { steps.append(.sendActivation(microBatch: k, chunk: c)) }
        return steps
    }

    private func backwardSteps(_ item: (Int, Int), stage: Int) -> [PipelineInstruction] {
        let (k, c) = item
        let s = virtualStage(stage: stage, chunk: c)
        var steps = [PipelineInstruction]()
        if s < virtualStages - 1 { steps.append(.receiveGradient(microBatch: k, chunk: c)) }
        steps.append(.backward(microBatch: k, chunk: c))
        if s > 0 { steps.append(.sendGradient(microBatch: k, chunk: c)) }
        return steps
    }
}
