import Datasets
import Distributed
import Models
import Pipeline

/// Runs one pipeline stage's instruction list (`PipelineSchedule`) over the stage's model chunks:
/// forwards and backwards of micro-batches, with their activations and activation gradients sent
/// to the neighbouring stages over the pipeline group. With one stage it is plain gradient
/// accumulation (forward, backward, next micro-batch).
///
/// Each micro-batch in flight through a chunk keeps its own `GPTActivations` between its forward
/// and its backward; the sets are reused from step to step, so a stage allocates as many as the
/// schedule's peak (at most `p` per chunk for 1F1B).
final class PipelineExecutor {
    let model: GPTModel
    /// The stages of this pipeline (nil: one stage).
    let pipeline: Communicator?
    private var spare: [[GPTActivations]]
    private var inFlight: [Slot: GPTActivations] = [:]
    /// This stage's list for the last number of micro-batches (the same every step without ramp-up).
    private var instructions: (microBatches: Int, list: [PipelineInstruction])?
    /// Seconds spent in forwards and backwards, and blocked in receives, since the last reset
    /// (the pipeline bubble is where a stage waits).
    private(set) var computeSeconds = 0.0
    private(set) var waitSeconds = 0.0
    /// BERT: the sum of the micro-batches' sentence-order losses of the last `run` or
    /// `forwardOnly` on the last stage (0 elsewhere, and for GPT).
    private(set) var sentenceOrderLossSum = 0.0
    private let clock = ContinuousClock()

    private struct Slot: Hashable {
        var microBatch: Int
        var chunk: Int
    }

    init(model: GPTModel, pipeline: Communicator?) {
        precondition((pipeline?.size ?? 1) == model.part.stages && (pipeline?.rank ?? 0) == model.part.stage,
                     "the pipeline group does not match the model's stage")
        self.model = model
        self.pipeline = pipeline
        spare = Array(repeating: [], count: model.part.chunks)
    }

    private var stages: Int { model.part.stages }
    private var stage: Int { model.part.stage }
    private var virtualStages: Int { stages * model.part.chunks }
    private func virtualStage(_ chunk: Int) -> Int { model.part.virtualStage(chunk: chunk) }

    /// Runs `schedule`'s list for this stage over `batches` (one per micro-batch; every stage gets
    /// the same ones, the first reads the tokens and the last the labels). Each micro-batch's loss
    /// gradient is scaled by `gradientScale`. Returns the sum of the micro-batches' mean losses on
    /// the last stage, 0 elsewhere.
    func run(_ schedule: PipelineSchedule, batches: [MicroBatch], gradientScale: Float) throws(GPTInputError) -> Double {
        precondition(schedule.stages == stages && schedule.kind.chunks == model.part.chunks && schedule.microBatches == batches.count,
                     "the schedule does not match the model's pipeline part or the batch")
        // Micro-batches left in flight by a run that threw are dropped.
        for slot in Array(inFlight.keys) { release(slot) }
        var lossSum = 0.0
        sentenceOrderLossSum = 0
        if instructions?.microBatches != schedule.microBatches {
            instructions = (schedule.microBatches, schedule.instructions(stage: stage))
        }
        for instruction in instructions!.list {
            let slot = Slot(microBatch: instruction.microBatch, chunk: instruction.chunk)
            switch instruction {
            case .receiveActivation:
                let acts = take(slot, shape: batches[slot.microBatch])
                timed(&waitSeconds) {
                    pipeline!.receive(acts.input, count: acts.hiddenCount, from: previousStage,
                                      tag: tag(slot, boundary: virtualStage(slot.chunk) - 1, gradient: false))
                }
            case .forward:
                let acts = inFlight[slot] ?? take(slot, shape: batches[slot.microBatch])
                let start = clock.now
                lossSum += try forward(slot, acts, batches[slot.microBatch], training: true)
                computeSeconds += seconds(since: start)
            case .sendActivation:
                let acts = inFlight[slot]!
                pipeline!.send(acts.output, count: acts.hiddenCount, to: nextStage,
                               tag: tag(slot, boundary: virtualStage(slot.chunk), gradient: false))
            case .receiveGradient:
                let acts = inFlight[slot]!
                timed(&waitSeconds) {
                    pipeline!.receive(acts.outputGradient, count: acts.hiddenCount, from: nextStage,
                                      tag: tag(slot, boundary: virtualStage(slot.chunk), gradient: true))
                }
            case .backward:
                timed(&computeSeconds) {
                    model.backward(chunk: slot.chunk, activations: inFlight[slot]!, gradientScale: gradientScale)
                }
                if virtualStage(slot.chunk) == 0 { release(slot) }
            case .sendGradient:
                let acts = inFlight[slot]!
                pipeline!.send(acts.inputGradient, count: acts.hiddenCount, to: previousStage,
                               tag: tag(slot, boundary: virtualStage(slot.chunk) - 1, gradient: true))
                release(slot)
            }
        }
        precondition(inFlight.isEmpty, "the schedule left micro-batches without a backward")
        return lossSum
    }

    /// Forward only (evaluation): each micro-batch through the chunks in virtual-stage order,
    /// activations passed on and nothing kept. Returns the sum of the mean losses on the last
    /// stage, 0 elsewhere; there `inspect` gets each micro-batch's index and activations after
    /// its forward.
    func forwardOnly(batches: [MicroBatch], inspect: ((Int, GPTActivations) -> Void)? = nil) throws(GPTInputError) -> Double {
        var lossSum = 0.0
        sentenceOrderLossSum = 0
        for (k, batch) in batches.enumerated() {
            for chunk in 0..<model.part.chunks {
                let slot = Slot(microBatch: k, chunk: chunk)
                let acts = take(slot, shape: batch)
                let s = virtualStage(chunk)
                if s > 0 {
                    pipeline!.receive(acts.input, count: acts.hiddenCount, from: previousStage,
                                      tag: tag(slot, boundary: s - 1, gradient: false))
                }
                lossSum += try forward(slot, acts, batch, training: false)
                if s == virtualStages - 1 { inspect?(k, acts) }
                if s < virtualStages - 1 {
                    pipeline!.send(acts.output, count: acts.hiddenCount, to: nextStage,
                                   tag: tag(slot, boundary: s, gradient: false))
                }
                release(slot)
            }
        }
        return lossSum
    }

    /// Sets the compute and wait counters to zero.
    func resetTimers() {
        computeSeconds = 0
        waitSeconds = 0
    }

    private func timed(_ counter: inout Double, _ body: () -> Void) {
        let start = clock.now
        body()
        counter += seconds(since: start)
    }

    private func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = (clock.now - start).components
        return Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
    }

    /// A training forward drops out (when configured) by the batch's run-wide sample indices.
    private func forward(_ slot: Slot, _ acts: GPTActivations, _ batch: MicroBatch, training: Bool) throws(GPTInputError) -> Double {
        if model.part.embeds(chunk: slot.chunk) || model.part.computesLoss(chunk: slot.chunk) {
            try model.load(batch, into: acts)
        }
        if let bert = batch.bert {  // every chunk's attention reads the lengths
            try model.loadBERT(tokenTypes: bert.tokenTypes, lengths: bert.lengths, sequenceLabels: bert.sequenceLabels, into: acts)
        }
        acts.dropoutSample = training ? batch.firstSample : nil
        let loss = model.forward(chunk: slot.chunk, activations: acts)?.mean ?? 0
        sentenceOrderLossSum += model.sentenceOrderTotals(acts)?.mean ?? 0
        return loss
    }

    /// The stage that runs the next virtual stage (chunk c on the last stage feeds chunk c + 1 on the first).
    private var nextStage: Int { (stage + 1) % stages }
    private var previousStage: Int { (stage + stages - 1) % stages }

    /// A tag unique to one micro-batch crossing one boundary between virtual stages `boundary`
    /// and `boundary + 1`, in one direction.
    private func tag(_ slot: Slot, boundary: Int, gradient: Bool) -> Int {
        2 * (slot.microBatch * virtualStages + boundary) + (gradient ? 1 : 0)
    }

    /// Bytes of the activation sets this stage holds (its peak: sets are kept for reuse), counted
    /// from the buffers themselves.
    var activationBytes: Int {
        (spare.joined().map(\.allocatedBytes) + inFlight.values.map(\.allocatedBytes)).reduce(0, +)
    }

    private func take(_ slot: Slot, shape batch: MicroBatch) -> GPTActivations {
        precondition(inFlight[slot] == nil, "micro-batch \(slot.microBatch) is already in flight through chunk \(slot.chunk)")
        var acts: GPTActivations
        if let reused = spare[slot.chunk].popLast(), reused.batch == batch.batchSize, reused.seqLength == batch.sequenceLength {
            acts = reused
        } else {
            acts = model.makeActivations(chunk: slot.chunk, batch: batch.batchSize, seqLength: batch.sequenceLength)
        }
        inFlight[slot] = acts
        return acts
    }

    private func release(_ slot: Slot) {
        spare[slot.chunk].append(inFlight.removeValue(forKey: slot)!)
    }
}
