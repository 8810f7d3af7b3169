import Models

/// What the run's settings derive: the batch ramp-up, the length in samples, the virtual
/// pipeline chunks, sequence parallelism, recomputation and the learning-rate schedule.
extension TrainingConfig {
    /// The ramp-up (nil without `--rampup-batch-size`).
    public func rampup() throws(TrainingError) -> BatchSizeRampup? {
        guard let r = rampupBatchSize else { return nil }
        return try BatchSizeRampup(start: r[0], increment: r[1], samples: r[2], finalBatchSize: globalBatchSize,
                                   microBatchTimesDataParallel: microBatchSize)
    }

    /// Training length in samples, counting the ramp-up's smaller batches like Megatron.
    public func totalSamples() throws(TrainingError) -> Int {
        if let trainSamples { return trainSamples }
        guard let trainIters else {
            throw .invalidFlag("--train-iters", "give exactly one of --train-iters and --train-samples")
        }
        guard let ramp = try rampup() else { return trainIters * globalBatchSize }
        var consumed = 0
        for iteration in 0..<trainIters {
            let batch = ramp.globalBatchSize(consumedSamples: consumed)
            // Past the ramp every batch is the final size.
            if batch == globalBatchSize { return consumed + (trainIters - iteration) * batch }
            consumed += batch
        }
        return consumed
    }

    /// Model chunks per pipeline stage (`v`): stage layers / `--num-layers-per-virtual-pipeline-stage`.
    public var virtualPipelineChunks: Int {
        guard let perChunk = numLayersPerVirtualPipelineStage else { return 1 }
        return (try? GPTPipelinePart.chunks(numLayers: numLayers, stages: pipelineModelParallelSize, layersPerChunk: perChunk)) ?? 1
    }

    /// Whether the run splits the sequence over the tensor-parallel ranks (`--sequence-parallel`
    /// with TP above 1).
    public var usesSequenceParallel: Bool { sequenceParallel && tensorModelParallelSize > 1 }

    /// Whether the distributed optimizer holds the fp32 master weights, sharded over the
    /// `dataParallel` ranks, and the model only its bf16 (or fp16) copy: bf16 or fp16 with
    /// `--use-distributed-optimizer` over more than one data-parallel rank (Megatron's 6 + 12/d
    /// bytes per parameter).
    public func shardsMasterWeights(dataParallel: Int) -> Bool {
        useDistributedOptimizer && precision != .fp32 && dataParallel > 1
    }

    /// What the settings say that the run will not do as asked (printed at the start of the log).
    public var warnings: [String] {
        sequenceParallel && tensorModelParallelSize == 1
            ? ["--sequence-parallel needs --tensor-model-parallel-size above 1: running without sequence parallelism"] : []
    }

    /// What the backward recomputes (Megatron's three recompute flags).
    public var recomputation: ActivationRecomputation {
        ActivationRecomputation(granularity: recomputeGranularity ?? .none, method: recomputeMethod ?? .uniform,
                                numLayers: recomputeNumLayers ?? 1)
    }

    /// The learning-rate schedule in samples.
    public func schedule() throws(TrainingError) -> LearningRateSchedule {
        let batch = globalBatchSize
        let warmup = lrWarmupSamples ?? (lrWarmupIters ?? 0) * batch
        let decay: Int
        if let lrDecaySamples {
            decay = lrDecaySamples
        } else if let lrDecayIters {
            decay = lrDecayIters * batch
        } else {
            decay = try totalSamples()
        }
        return LearningRateSchedule(maxLR: lr, minLR: minLR, style: lrDecayStyle, warmupSamples: warmup,
                                    decaySamples: decay)
    }
}
