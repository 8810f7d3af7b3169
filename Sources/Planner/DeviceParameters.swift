import Models

/// The parameters one device of a pipeline stage holds: its layers' share over TP, and on the
/// first stage the word embedding's vocabulary rows and the position embedding, on the last (of
/// two or more) its copy of the word embedding for the output layer.
enum DeviceParameters {
    /// A transformer layer's parameters on one TP rank.
    static func perLayer(_ config: GPTConfig, tensorParallel t: Int) -> Double {
        let h = Double(config.hiddenSize)
        return (12 * h * h + 13 * h) / Double(t)
    }

    /// The word embedding's rows on one TP rank.
    static func wordEmbedding(_ config: GPTConfig, tensorParallel t: Int) -> Double {
        Double(config.paddedVocabSize) * Double(config.hiddenSize) / Double(t)
    }

    /// The first stage's parameters on one device.
    static func perDevice(config: GPTConfig, layout: TrainingLayout) -> Double {
        let stages = (try? layout.stageLayers(config))?.first ?? config.numLayers / layout.pipelineParallel
        return Double(stages) * perLayer(config, tensorParallel: layout.tensorParallel)
            + wordEmbedding(config, tensorParallel: layout.tensorParallel)
            + Double(config.maxPositionEmbeddings * config.hiddenSize)
    }

    /// The last stage's parameters on one device (with one stage, the first's).
    static func lastStage(config: GPTConfig, layout: TrainingLayout, layers: Int) -> Double {
        guard layout.pipelineParallel > 1 else { return perDevice(config: config, layout: layout) }
        return Double(layers) * perLayer(config, tensorParallel: layout.tensorParallel)
            + wordEmbedding(config, tensorParallel: layout.tensorParallel)
    }

    /// The most parameters any stage's device holds: what its data-parallel reduction and
    /// optimizer step cost, which the other stages wait for.
    static func largestStage(config: GPTConfig, layout: TrainingLayout) -> Double {
        guard let stages = try? layout.stageLayers(config) else { return perDevice(config: config, layout: layout) }
        let perLayer = perLayer(config, tensorParallel: layout.tensorParallel)
        return max(perDevice(config: config, layout: layout), Double(stages.middle) * perLayer,
                   lastStage(config: config, layout: layout, layers: stages.last))
    }
}
