#if canImport(FoundationEssentials)
import FoundationEssentials
#endif
import Foundation
import Distributed
import FileSupport
import Models
import Parameters
import TorchFormat

extension MegatronLMCheckpoint {
    /// Writes `params` (a whole model of `config`) as a Megatron-LM checkpoint of the legacy
    /// layout into `directory`: `iter_NNNNNNN/mp_rank_TT[_PPP]/model_optim_rng.pt` for `t` x `p`
    /// ranks, each `{'args', 'checkpoint_version': 3.0, 'iteration', 'model'}` (with `v` > 1 model
    /// chunks per stage, the interleaved schedule's `model0`, `model1`, ...) with megatron-core's
    /// local-spec names (stage-local layer numbers, `_extra_state` entries as the local spec
    /// saves them, the last stage's copy of the tied word embedding or the untied output layer
    /// as `output_layer.weight`),
    /// then the tracker file (iteration 0 is written as `release`, the only way Megatron-LM reads
    /// it). Loads into megatron-core's `GPTModel` with `strict=True`. An existing iteration folder
    /// is not written into.
    ///
    /// The vocabulary is padded as Megatron-LM pads it for `t` ranks: to a multiple of
    /// `make_vocab_size_divisible_by` x TP above the tokenizer's size (`trueVocabularySize`,
    /// Megatron's converter's `--true-vocab-size`; by default the model's vocabulary size), with
    /// zero rows added or padding rows dropped as needed.
    public static func write(_ params: ParameterStore, config: GPTConfig, iteration: Int, to directory: String,
                             tensorParallel t: Int = 1, pipelineParallel p: Int = 1, chunks v: Int = 1,
                             trueVocabularySize: Int? = nil) throws(TrainingError) {
        let (params, config) = try repaddingVocabulary(params, config: config, tensorParallel: t,
                                                       trueVocabularySize: trueVocabularySize ?? config.vocabSize, path: directory)
        do {
            try RankGrid(tensorParallel: t, dataParallel: 1, pipelineParallel: p, virtualStages: v)
                .validate(heads: config.numAttentionHeads, hidden: config.hiddenSize, paddedVocabulary: config.paddedVocabSize,
                          layers: config.numLayers)
        } catch {
            throw .checkpoint(path: directory, reason: "\(error)")
        }
        // Megatron-LM reads iteration 0 only as `release` (its tracker must hold an iteration > 0 or "release").
        let folderName = iteration == 0 ? "release" : Checkpoint.directoryName(iteration: iteration)
        let folder = directory + "/" + folderName
        guard !FileManager.default.fileExists(atPath: folder) else {
            throw .checkpoint(path: folder, reason: "already exists (rank files of another layout would be mixed in): remove it or write elsewhere")
        }
        for stage in 0..<p {
            let part: GPTPipelinePart
            do { part = try GPTPipelinePart(numLayers: config.numLayers, stages: p, stage: stage, chunks: v) } catch {
                throw .checkpoint(path: directory, reason: "\(error)")
            }
            let specs = GPTModel.parameterSpecs(config, tensorParallel: t, part: part)
            for rank in 0..<t {
                func tensor(_ name: String) -> TorchSaveValue {
                    let index = params.layout.index(of: name)!, fullShape = params.layout.specs[index].shape
                    let shard = TensorShard(name: name), shape = shard.shape(of: fullShape, size: t)
                    var values = [Float](repeating: 0, count: shape.reduce(1, *))
                    values.withUnsafeMutableBufferPointer { out in
                        shard.slice(params.pointer(at: index), into: out.baseAddress!, fullShape: fullShape, rank: rank, size: t)
                    }
                    return .tensor(shape: shape, values: values)
                }
                // One state dict per model chunk (`model`, or `model0`, `model1`, ... interleaved).
                var models = [(String, TorchSaveValue)]()
                for chunk in 0..<v {
                    let layers = part.chunkLayers[chunk]
                    var state = [(String, TorchSaveValue)]()
                    for spec in specs {
                        var name = spec.name
                        if name.hasPrefix("decoder.layers.") {
                            let parts = name.split(separator: ".", maxSplits: 3)
                            let layer = Int(parts[2])!
                            guard layers.contains(layer) else { continue }
                            name = "decoder.layers.\(layer - layers.lowerBound).\(parts[3])"
                        } else if name.hasPrefix("embedding.") {
                            guard part.embeds(chunk: chunk) else { continue }  // a head's tied copy: output_layer.weight below
                        } else if !part.computesLoss(chunk: chunk) {
                            continue
                        }
                        state.append((name, tensor(spec.name)))
                        for linear in ["self_attention.linear_proj", "self_attention.linear_qkv", "mlp.linear_fc1", "mlp.linear_fc2"]
                        where name.hasSuffix(linear + ".bias") {
                            state.append((String(name.dropLast("bias".count)) + "_extra_state", .none))
                        }
                    }
                    if part.computesLoss(chunk: chunk) {
                        // A head without the input embedding holds the tied weight as its own
                        // output_layer.weight; untied, the output layer was written with the specs.
                        if !part.embeds(chunk: chunk) && !config.untieEmbeddingsAndOutputWeights {
                            state.append((outputLayerName, tensor(wordEmbeddingName)))
                        }
                        state.append(("output_layer._extra_state", .none))
                    }
                    models.append((v == 1 ? "model" : "model\(chunk)", .orderedDict(state)))
                }
                let name = Checkpoint.rankDirectoryName(tensorRank: rank, pipelineRank: p > 1 ? stage : nil)
                do {
                    try Directory.create(folder + "/" + name)
                    try TorchSave.write(.dict([("args", arguments(config, t: t, p: p, v: v, iteration: iteration)),
                                               ("checkpoint_version", .float(3.0)), ("iteration", .int(iteration))] + models),
                                        to: folder + "/" + name + "/model_optim_rng.pt")
                } catch {
                    throw .checkpoint(path: folder + "/" + name, reason: "\(error)")
                }
            }
        }
        do {
            try AtomicFile.write(Array((iteration == 0 ? "release" : "\(iteration)").utf8), to: directory + "/" + Checkpoint.trackerName)
        } catch {
            throw .checkpoint(path: directory, reason: "\(error)")
        }
    }

    /// `params` with the word embedding (and an untied output layer) cut or zero-padded to
    /// `trueVocabularySize` rounded up to a multiple of `makeVocabSizeDivisibleBy` x `t`, and the
    /// config describing it (its `makeVocabSizeDivisibleBy` multiplied by `t`: `arguments` divides
    /// it back). Only rows at or past the true vocabulary are dropped.
    static func repaddingVocabulary(_ params: ParameterStore, config: GPTConfig, tensorParallel t: Int,
                                    trueVocabularySize vocabulary: Int, path: String) throws(TrainingError) -> (ParameterStore, GPTConfig) {
        guard vocabulary >= 1, vocabulary <= config.acceptedVocabularySize else {
            throw .checkpoint(path: path, reason: "the true vocabulary size \(vocabulary) is not in 1...\(config.acceptedVocabularySize), the ids this model accepts")
        }
        var target = config
        target.vocabSize = vocabulary
        target.makeVocabSizeDivisibleBy = config.makeVocabSizeDivisibleBy * t
        let layout = ParameterLayout(GPTModel.parameterSpecs(target, part: .whole(numLayers: config.numLayers)))
        let store = ParameterStore(layout: layout)
        let c = config.hiddenSize, keptRows = min(config.paddedVocabSize, target.paddedVocabSize)
        for (index, spec) in layout.specs.enumerated() {
            let source = params[spec.name]
            let count = spec.name == wordEmbeddingName || spec.name == outputLayerName ? keptRows * c : spec.count
            store.pointer(at: index).update(from: source, count: count)  // rows past `keptRows` stay zero
        }
        return (store, target)
    }

    /// The `args` namespace Megatron-LM checks a loaded checkpoint against, with its names.
    static func arguments(_ config: GPTConfig, t: Int, p: Int, v: Int = 1, iteration: Int) -> TorchSaveValue {
        // The shortest decimal of each fp32 setting (1e-05, not 9.99999974e-06).
        func decimal(_ value: Float) -> TorchSaveValue { .float(Double("\(value)") ?? Double(value)) }
        return .namespace([
            ("num_layers", .int(config.numLayers)), ("hidden_size", .int(config.hiddenSize)),
            ("ffn_hidden_size", .int(config.ffnHiddenSize)), ("num_attention_heads", .int(config.numAttentionHeads)),
            ("kv_channels", .int(config.headDim)), ("max_position_embeddings", .int(config.maxPositionEmbeddings)),
            ("padded_vocab_size", .int(config.paddedVocabSize)), ("make_vocab_size_divisible_by", .int(config.makeVocabSizeDivisibleBy / t)),
            ("tensor_model_parallel_size", .int(t)), ("pipeline_model_parallel_size", .int(p)),
            ("virtual_pipeline_model_parallel_size", v > 1 ? .int(v) : .none),
            ("num_layers_per_virtual_pipeline_stage", v > 1 ? .int(config.numLayers / (p * v)) : .none), ("untie_embeddings_and_output_weights", .bool(config.untieEmbeddingsAndOutputWeights)),
            ("norm_epsilon", decimal(config.layerNormEpsilon)), ("normalization", .string("LayerNorm")),
            ("position_embedding_type", .string("learned_absolute")), ("swiglu", .bool(false)), ("add_bias_linear", .bool(true)),
            ("group_query_attention", .bool(false)), ("num_query_groups", .none), ("num_experts", .none),
            ("bias_gelu_fusion", .bool(!config.exactGELU)), ("openai_gelu", .bool(false)),
            ("apply_residual_connection_post_layernorm", .bool(false)), ("transformer_impl", .string("local")),
            ("hidden_dropout", decimal(config.hiddenDropout)), ("attention_dropout", decimal(config.attentionDropout)),
            ("init_method_std", decimal(config.initMethodStd)), ("params_dtype", .global(module: "torch", name: "float32")),
            ("tokenizer_type", .string("GPT2BPETokenizer")),
            ("iteration", .int(iteration)),
        ])
    }
}
