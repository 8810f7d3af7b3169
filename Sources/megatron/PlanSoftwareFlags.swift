import ArgumentParser
import Planner

/// `megatron plan`'s Megatron-LM software flags: kernel fusions, pipeline scatter-gather,
/// FlashAttention, overlap, and uneven first and last pipeline stages (GPU time model).
struct PlanSoftwareFlags: ParsableArguments {
    @Flag(name: .long, help: "Scale, mask and softmax as separate kernels.")
    var noMaskedSoftmaxFusion = false
    @Flag(name: .long, help: "fc1's bias and GELU as separate kernels.")
    var noBiasGeluFusion = false
    @Flag(name: .long, help: "Bias, dropout and residual addition as separate kernels.")
    var noBiasDropoutFusion = false
    @Flag(name: .long, help: "Weight gradients added into the fp32 buffer after each GEMM (Megatron-LM before 2022).")
    var noGradientAccumulationFusion = false
    @Flag(name: .long, help: "Every TP rank sends the whole pipeline boundary.")
    var noScatterGatherTensorsInPipeline = false
    @Flag(name: .long, help: "FlashAttention: no s x s scores in memory.")
    var useFlashAttn = false
    @Flag(name: .long, help: "Reduce gradients over DP during the last micro-batch's backward.")
    var overlapGradReduce = false
    @Flag(name: .long, help: "All-gather the distributed optimizer's weights during the next forward.")
    var overlapParamGather = false
    @Option(name: .long, help: "Layers of the first pipeline stage (the others share the rest evenly).")
    var decoderFirstPipelineNumLayers: Int?
    @Option(name: .long, help: "Layers of the last pipeline stage.")
    var decoderLastPipelineNumLayers: Int?

    /// Whether any of these flags is given (Megatron-LM's defaults, even stages).
    var isDefault: Bool {
        var applied = TrainingLayout()
        apply(to: &applied)
        return applied.software == SoftwareOptions() && !applied.isUneven
    }

    /// Refuses the GPU software flags and uneven stages on `--cluster local`, which times this
    /// binary's own kernels.
    func checkLocal() throws {
        if !isDefault {
            throw ValidationError("--cluster local times this binary's own kernels: the GPU software flags and uneven stages do not apply")
        }
    }

    /// Refuses flags that cannot apply: uneven stages under `--search` (which chooses its own
    /// stages), `--overlap-param-gather` without the distributed optimizer (Megatron-LM refuses
    /// it too), FlashAttention on a cluster without a FlashAttention figure.
    func check(cluster: ClusterSpec, search: Bool, distributedOptimizer: Bool) throws {
        if search && (decoderFirstPipelineNumLayers != nil || decoderLastPipelineNumLayers != nil) {
            throw ValidationError("--search chooses the stages itself: drop --decoder-first/last-pipeline-num-layers")
        }
        if overlapParamGather && !distributedOptimizer {
            throw ValidationError("--overlap-param-gather needs --use-distributed-optimizer")
        }
        var applied = TrainingLayout()
        apply(to: &applied)
        try Planner.checkSoftware(applied.software, on: cluster)
    }

    /// Applies the flags to a layout.
    func apply(to layout: inout TrainingLayout) {
        layout.software.maskedSoftmaxFusion = !noMaskedSoftmaxFusion
        layout.software.biasGELUFusion = !noBiasGeluFusion
        layout.software.biasDropoutFusion = !noBiasDropoutFusion
        layout.software.gradientAccumulationFusion = !noGradientAccumulationFusion
        layout.software.scatterGatherInPipeline = !noScatterGatherTensorsInPipeline
        layout.software.flashAttention = useFlashAttn
        layout.software.overlapGradReduce = overlapGradReduce
        layout.software.overlapParamGather = overlapParamGather
        (layout.firstStageLayers, layout.lastStageLayers) = (decoderFirstPipelineNumLayers, decoderLastPipelineNumLayers)
    }
}
