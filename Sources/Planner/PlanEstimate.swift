import Kernels
import Models

/// What the planner predicts for a model, layout and cluster.
public struct PlanEstimate: Sendable {
    public var parameters: Double
    /// Parameters held by a device of the most loaded pipeline stage (the first, or with a
    /// lighter first stage the second).
    public var parametersPerDevice: Double
    /// Weights + gradients + optimizer state on that device.
    public var stateBytesPerDevice: Double { weightBytesPerDevice + gradientBytesPerDevice + optimizerBytesPerDevice }
    /// Model weights in the training precision.
    public var weightBytesPerDevice: Double
    /// Gradients as accumulated and reduced.
    public var gradientBytesPerDevice: Double
    /// fp32 master weights and Adam moments (sharded over DP with the distributed optimizer).
    public var optimizerBytesPerDevice: Double
    /// Activations of the first stage's in-flight micro-batches.
    public var activationBytesPerDevice: Double
    public var memoryPerDeviceBytes: Double { stateBytesPerDevice + activationBytesPerDevice }
    /// What each process holds besides (the binary and its libraries; measured for `local`).
    public var processBytes = 0.0
    /// Whether it fits in the device memory.
    public var fits: Bool
    /// Model FLOPs per iteration (72-form, what MFU counts).
    public var modelFLOPsPerIteration: Double
    /// FLOPs actually executed, recomputation included.
    public var hardwareFLOPsPerIteration: Double
    public var microBatches: Int
    public var bubbleFraction: Double
    /// Seconds per iteration of each part on the critical path.
    public var computeSeconds: Double
    public var bubbleSeconds: Double
    public var tensorParallelSeconds: Double
    public var pipelineParallelSeconds: Double
    public var dataParallelSeconds: Double
    public var optimizerSeconds: Double
    public var iterationSeconds: Double
    public var devices: Int
    public var tokensPerIteration: Double

    /// Hardware FLOP/s per device (what Megatron and MT-NLG report as TFLOP/s per GPU).
    public var flopsPerDevice: Double { hardwareFLOPsPerIteration / (Double(devices) * iterationSeconds) }
    /// Model FLOPs utilisation against the device peak.
    public var mfu: Double = 0
    public var tokensPerSecond: Double { tokensPerIteration / iterationSeconds }

    /// Days to train on `tokens` tokens at this throughput.
    public func daysToTrain(tokens: Double) -> Double { tokens / tokensPerSecond / 86_400 }
}

/// The planner's model of one training iteration (1F1B pipeline schedule):
///
///     iteration = m x t_mb (the slowest stage) + (p-1)/v x the stages' mean t_mb
///               + data-parallel communication left exposed + optimizer step
///
/// with the parts of a micro-batch's `t_mb` (GEMMs, attention, memory-bound kernels, TP and PP
/// communication) from `GPUStepTime` on a GPU cluster, or from `LocalStepTime` (this machine's
/// kernel micro-benchmarks) for `--cluster local`.
public enum Planner {
    /// Refuses software the cluster has no figure for: FlashAttention on a GPU without
    /// `flash_attention_efficiency` (this machine's own attention kernel is measured).
    public static func checkSoftware(_ software: SoftwareOptions, on cluster: ClusterSpec) throws(PlanError) {
        guard !software.flashAttention || cluster.flashAttentionEfficiency != nil || cluster.kernelTimings != nil else {
            throw .invalid("--use-flash-attn: \(cluster.name) has no FlashAttention figure (flash_attention_efficiency)")
        }
    }

    /// Predicts memory and time; throws if the layout does not divide the model or batch, or
    /// needs more devices than the cluster has.
    public static func estimate(config: GPTConfig, layout: TrainingLayout,
                                cluster: ClusterSpec) throws(PlanError) -> PlanEstimate {
        try layout.validate(for: config)
        guard !(layout.isUneven && cluster.kernelTimings != nil) else {
            throw .invalid("--cluster local: uneven pipeline stages are not supported by megatron train")
        }
        let stages = try layout.stageLayers(config)
        try checkSoftware(layout.software, on: cluster)
        guard layout.devices <= cluster.devices else {
            throw .invalid("the layout needs \(layout.devices) devices (TP \(layout.tensorParallel) x PP \(layout.pipelineParallel) x DP \(layout.dataParallel)) but \(cluster.name) x \(cluster.nodes) nodes has \(cluster.devices)")
        }
        let t = Double(layout.tensorParallel), p = Double(layout.pipelineParallel)
        let v = Double(layout.virtualStages), dp = layout.dataParallel
        let l = Double(config.numLayers), h = Double(config.hiddenSize), s = Double(config.maxPositionEmbeddings)
        let m = layout.microBatches
        let precision = layout.precision

        // Memory of the first stage: its layers, the word embeddings (split over TP) and the
        // position embeddings (replicated).
        var perDevice = DeviceParameters.perDevice(config: config, layout: layout)
        // Megatron's table split into its parts: weights and gradients are replicated, the rest
        // (fp32 master weights, moments, fp16's fp32 gradient copy) is what ZeRO-1 shards.
        let replicatedOptimizer = MemoryModel.bytesPerParameter(precision: precision, distributedOptimizer: false, dataParallel: 1)
            - precision.weightBytes - precision.gradientBytes
        var weightBytes = perDevice * precision.weightBytes
        var gradientBytes = perDevice * precision.gradientBytes
        var optimizerBytes = perDevice * replicatedOptimizer / Double(layout.distributedOptimizer ? dp : 1)
        // 1F1B keeps up to p micro-batches in flight on the first stage; interleaving adds (p-1)/(p v).
        let inFlight = min(Double(m), p) * (layout.virtualStages > 1 ? 1 + (p - 1) / (p * v) : 1)
        var activations: Double
        switch cluster.implementation {
        case .megatronGPU:
            let options = MemoryModel.ActivationOptions(tensorParallel: layout.tensorParallel,
                                                         sequenceParallel: layout.sequenceParallel,
                                                         recompute: layout.recompute)
            let perLayer = MemoryModel.activationBytesPerLayer(seqLength: config.maxPositionEmbeddings,
                                                               microBatch: layout.microBatchSize, hidden: config.hiddenSize,
                                                               heads: config.numAttentionHeads, options: options)
                * precision.activationBytes / 2
            activations = perLayer * Double(stages.first) * inFlight
            // Uneven stages can make another stage the most loaded: the second (its layers with
            // p-1 micro-batches in flight; of two stages, the last with its copy of the word
            // embedding) or the last (one micro-batch in flight).
            if layout.isUneven {
                let second = p > 2 ? stages.middle : stages.last
                var others = [(parameters: p > 2 ? Double(second) * DeviceParameters.perLayer(config, tensorParallel: layout.tensorParallel)
                                   : DeviceParameters.lastStage(config: config, layout: layout, layers: second),
                               activations: perLayer * Double(second) * min(Double(m), p - 1))]
                if p > 2 {
                    others.append((DeviceParameters.lastStage(config: config, layout: layout, layers: stages.last),
                                   perLayer * Double(stages.last)))
                }
                let perParameter = precision.weightBytes + precision.gradientBytes
                    + replicatedOptimizer / Double(layout.distributedOptimizer ? dp : 1)
                for stage in others where stage.parameters * perParameter + stage.activations > perDevice * perParameter + activations {
                    perDevice = stage.parameters
                    (weightBytes, gradientBytes) = (perDevice * precision.weightBytes, perDevice * precision.gradientBytes)
                    optimizerBytes = perDevice * replicatedOptimizer / Double(layout.distributedOptimizer ? dp : 1)
                    activations = stage.activations
                }
            }
        case .megatronSwift:
            // A stage reads its LayerNorms (4h per layer) and biases (QKV's and fc1's split over TP,
            // the projection's and fc2's replicated) in fp32; the embeddings in low precision.
            let readInFP32 = l / p * (6 + 7 / t) * h
            let bytes = MemoryModel.megatronSwiftBytes(precision: precision, distributedOptimizer: layout.distributedOptimizer,
                                                       dataParallel: dp, fp32ReadFraction: readInFP32 / perDevice)
            (weightBytes, gradientBytes, optimizerBytes) = (perDevice * bytes.weights, perDevice * bytes.gradients,
                                                            perDevice * bytes.optimizer)
            // Each rank thread of the node gets its share of the cores (as `megatron train` gives them).
            let threads = max(1, ThreadPool.current.threadCount / cluster.devicesPerNode)
            activations = LocalActivations.bytes(config: config, layout: layout, inFlight: inFlight, threads: threads)
        }
        let state = weightBytes + gradientBytes + optimizerBytes

        // Time.
        let batch = layout.globalBatchSize
        let modelFLOPs = CostModel.flopsPerIteration(config, batch: batch, recompute: .none)
        let hardwareFLOPs = CostModel.flopsPerIteration(config, batch: batch, recompute: layout.recompute)
        // This machine: every part from its kernels' micro-benchmarks; a GPU cluster: every part
        // from the device's datasheet and micro-benchmark figures.
        let step: any StepTimeParts = if let timings = cluster.kernelTimings {
            LocalStepTime(config: config, layout: layout, timings: timings)
        } else {
            GPUStepTime(config: config, layout: layout, cluster: cluster, software: layout.software)
        }
        let (computePerMicroBatch, tpPerMicroBatch, ppPerMicroBatch) = (step.computePerMicroBatch,
                                                                        step.tensorParallelSeconds, step.pipelineParallelSeconds)
        let (dpSeconds, optimizerSeconds) = (step.dataParallelSeconds, step.optimizerSeconds)
        let perMicroBatch = computePerMicroBatch + tpPerMicroBatch + ppPerMicroBatch
        let bubble = (p - 1) / v * step.meanStageSeconds

        let iteration = Double(m) * perMicroBatch + bubble + dpSeconds + optimizerSeconds

        var estimate = PlanEstimate(
            parameters: CostModel.parameters(config), parametersPerDevice: perDevice,
            weightBytesPerDevice: weightBytes, gradientBytesPerDevice: gradientBytes,
            optimizerBytesPerDevice: optimizerBytes, activationBytesPerDevice: activations,
            fits: state + activations <= cluster.memoryBytes,
            modelFLOPsPerIteration: modelFLOPs, hardwareFLOPsPerIteration: hardwareFLOPs,
            microBatches: m,
            bubbleFraction: CostModel.bubbleFraction(pipelineStages: layout.pipelineParallel,
                                                     virtualStages: layout.virtualStages, microBatches: m),
            computeSeconds: Double(m) * computePerMicroBatch,
            bubbleSeconds: bubble,
            tensorParallelSeconds: Double(m) * tpPerMicroBatch,
            pipelineParallelSeconds: Double(m) * ppPerMicroBatch,
            dataParallelSeconds: dpSeconds, optimizerSeconds: optimizerSeconds,
            iterationSeconds: iteration, devices: layout.devices,
            tokensPerIteration: Double(batch) * s)
        estimate.mfu = modelFLOPs / (Double(layout.devices) * iteration * cluster.peakFLOPs)
        estimate.processBytes = cluster.processBytes
        return estimate
    }
}
