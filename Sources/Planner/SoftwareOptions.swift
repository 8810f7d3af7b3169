/// What the training software does beyond the layout, as Megatron-LM's flags name it: which
/// memory-bound kernels are fused, whether pipeline transfers are split over the TP ranks, the
/// attention kernel, and which data-parallel communication overlaps the compute. The planner's
/// GPU time model counts each explicitly (`GPUStepTime`); nothing about the software is folded
/// into an efficiency factor. The defaults are Megatron-LM's defaults (fusions on, scatter-gather
/// on, unfused attention, no overlap).
public struct SoftwareOptions: Sendable, Equatable {
    /// Scale, mask and softmax of the attention scores in one kernel
    /// (`--no-masked-softmax-fusion` turns it off).
    public var maskedSoftmaxFusion = true
    /// The fc1 bias and GELU in one kernel (`--no-bias-gelu-fusion`).
    public var biasGELUFusion = true
    /// Bias, dropout and residual addition in one kernel (`--no-bias-dropout-fusion`).
    public var biasDropoutFusion = true
    /// Each TP rank sends its 1/t of a pipeline boundary and the receivers all-gather it over the
    /// node's links (`--no-scatter-gather-tensors-in-pipeline` sends the whole tensor from every rank).
    public var scatterGatherInPipeline = true
    /// FlashAttention (`--use-flash-attn`): the attention core never writes the `s x s` scores to
    /// memory, at the kernel's own published efficiency (`ClusterSpec.flashAttentionEfficiency`).
    public var flashAttention = false
    /// The weight-gradient GEMMs accumulate straight into the fp32 gradient buffer
    /// (`--no-gradient-accumulation-fusion` turns it off; Megatron-LM has it since February
    /// 2022). Without it every micro-batch's backward adds its 16-bit weight gradients into the
    /// fp32 buffer: 10 bytes of memory traffic per parameter.
    public var gradientAccumulationFusion = true
    /// The gradients' data-parallel reduction runs in buckets during the last micro-batch's
    /// backward (`--overlap-grad-reduce`).
    public var overlapGradReduce = false
    /// The distributed optimizer's all-gather of updated weights runs during the next forward
    /// (`--overlap-param-gather`).
    public var overlapParamGather = false

    public init() {}

    /// The flags that differ from Megatron-LM's defaults, as a user would pass them.
    public var flags: [String] {
        var flags: [String] = []
        if !maskedSoftmaxFusion { flags.append("--no-masked-softmax-fusion") }
        if !biasGELUFusion { flags.append("--no-bias-gelu-fusion") }
        if !biasDropoutFusion { flags.append("--no-bias-dropout-fusion") }
        if !gradientAccumulationFusion { flags.append("--no-gradient-accumulation-fusion") }
        if !scatterGatherInPipeline { flags.append("--no-scatter-gather-tensors-in-pipeline") }
        if flashAttention { flags.append("--use-flash-attn") }
        if overlapGradReduce { flags.append("--overlap-grad-reduce") }
        if overlapParamGather { flags.append("--overlap-param-gather") }
        return flags
    }
}
