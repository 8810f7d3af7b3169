/// The parts of an iteration's time that a step model adds up (`GPUStepTime` on a GPU cluster,
/// `LocalStepTime` on this machine) and `Planner.estimate` puts together: one micro-batch's
/// forward and backward on the slowest stage, in parts; the stages' mean micro-batch for the
/// pipeline's fill and drain; and what runs once per iteration.
public protocol StepTimeParts: Sendable {
    /// Seconds of one micro-batch on the slowest stage: GEMMs, the attention core, the
    /// memory-bound kernels, and the TP and PP communication.
    var gemmSeconds: Double { get }
    var attentionSeconds: Double { get }
    var elementwiseSeconds: Double { get }
    var tensorParallelSeconds: Double { get }
    var pipelineParallelSeconds: Double { get }
    /// A micro-batch on a stage averaged over the stages (the fill and drain's cost per slot).
    var meanStageSeconds: Double { get }
    /// Per iteration: the data-parallel communication left exposed, and the optimizer step.
    var dataParallelSeconds: Double { get }
    var optimizerSeconds: Double { get }
}

extension StepTimeParts {
    /// Compute of one micro-batch (GEMMs, attention core, memory-bound kernels).
    public var computePerMicroBatch: Double { gemmSeconds + attentionSeconds + elementwiseSeconds }
}
