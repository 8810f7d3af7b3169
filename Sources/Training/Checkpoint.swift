#if canImport(FoundationEssentials)
import Distributed
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import FileSupport
import Kernels
import Models
import Optimizer
import Parameters

/// Megatron-style checkpoint directories: `DIR/iter_0000100/mp_rank_TT/model_optim_rng.safetensors`
/// per tensor-parallel rank (`mp_rank_TT_PPP` per tensor- and pipeline-parallel rank when there
/// are several stages: that stage's layers, under their global names) holding its shard of the
/// weights, the Adam moments, and the run state in the header's metadata;
/// `distrib_optim_dp_RR.safetensors` beside it per data-parallel rank when the distributed
/// optimizer holds the moments; and `DIR/latest_checkpointed_iteration.txt`. Saving under a
/// layout and loading under the same one resumes bit-identically; the data-parallel size and the
/// optimizer kind may change at load, the tensor- and pipeline-parallel sizes through `reshard`.
public enum Checkpoint {
    static let trackerName = "latest_checkpointed_iteration.txt"

    /// `iter_0000100`.
    public static func directoryName(iteration: Int) -> String {
        let digits = String(iteration)
        return "iter_" + String(repeating: "0", count: max(0, 7 - digits.count)) + digits
    }

    /// `mp_rank_00`, Megatron's folder of a tensor-parallel rank, or `mp_rank_00_000` for a
    /// tensor- and pipeline-parallel rank (`pipelineRank` nil: a single stage).
    public static func rankDirectoryName(tensorRank: Int, pipelineRank: Int? = nil) -> String {
        func padded(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "mp_rank_" + padded(tensorRank, 2) + (pipelineRank.map { "_" + padded($0, 3) } ?? "")
    }

    /// The folder name of a model's rank (`mp_rank_TT`, or `mp_rank_TT_PPP` with several stages).
    static func rankDirectoryName(of model: GPTModel) -> String {
        rankDirectoryName(tensorRank: model.tensorParallelRank, pipelineRank: model.part.stages > 1 ? model.part.stage : nil)
    }

    /// Writes this rank's part of a checkpoint into `directory` (created if needed). Collective
    /// over `parallel.world`: the first data-parallel rank of each (tensor, pipeline) rank writes
    /// the model file, every rank its optimizer shard when sharded, global rank 0 moves the directory
    /// into place. Weights that are not all finite are never saved: every rank throws, naming the
    /// first tensor at fault, before anything is written.
    public static func save(to directory: String, model: GPTModel, moments: Moments, state: State,
                            arguments: JSONValue = .object([]), schedule: LearningRateSchedule? = nil,
                            parallel: ParallelState = .single) throws(TrainingError) {
        let target = CheckpointDirectory(root: directory, iteration: state.iteration)
        let bad = model.keepsMasterWeights ? model.params.firstNonFinite() : moments.masterHolder.firstNonFiniteMaster()
        let anyBad = parallel.world.map { $0.allReduce([bad == nil ? 0.0 : 1.0], operation: .max)[0] > 0 } ?? (bad != nil)
        if anyBad {
            let what = bad.map { "tensor \($0.name) holds \($0.value) (element \($0.index))" } ?? "another rank's weights are not all finite"
            throw .checkpoint(path: directory, reason: "refusing to save iteration \(state.iteration): \(what)")
        }
        // The weights saved are the fp32 master weights; where the optimizer holds them sharded,
        // the data-parallel group gathers them into the first rank's transient copy.
        let weights = model.keepsMasterWeights ? model.params : moments.masterHolder.gatheredMasters(keep: parallel.dataRank == 0)
        if parallel.isFirst { try target.prepare() }
        parallel.world?.barrier()
        let rankDirectory = try target.rankDirectory(rankDirectoryName(of: model))
        var sharded = false
        if case .sharded(let optimizer) = moments {
            sharded = true
            let range = optimizer.shardRange
            try CheckpointFiles.writeShard(to: rankDirectory, dataRank: parallel.dataRank, dataParallel: parallel.dataParallel,
                                           range: range, m: optimizer.m.pointer, v: optimizer.v.pointer)
        }
        if parallel.dataRank == 0, let weights {
            var metadata = [
                "format": "megatron-swift checkpoint 1",
                "model": modelDescription(model.config).serialized,
                "config": canonicalJSON(model.config),
                "args": arguments.serialized,
                "scheduler": schedule.map(canonicalJSON) ?? "null",
            ]
            metadata.merge(state.metadata) { $1 }
            metadata.merge(layoutMetadata(tensorParallel: model.tensorParallelSize, tensorRank: model.tensorParallelRank,
                                          part: model.part, dataParallel: parallel.dataParallel, sharded: sharded)) { $1 }
            var whole: (m: ParameterStore, v: ParameterStore)?
            if case .whole(let optimizer) = moments { whole = (optimizer.m, optimizer.v) }
            try CheckpointFiles.writeModel(to: rankDirectory, params: weights, moments: whole, metadata: metadata)
        }
        parallel.world?.barrier()
        if parallel.isFirst { try target.commit() }
        parallel.world?.barrier()
    }

    /// The metadata that says how a rank file was sharded.
    static func layoutMetadata(tensorParallel: Int, tensorRank: Int, part: GPTPipelinePart, dataParallel: Int,
                               sharded: Bool) -> [String: String] {
        ["tensor_model_parallel_size": String(tensorParallel), "tensor_model_parallel_rank": String(tensorRank),
         "pipeline_model_parallel_size": String(part.stages), "pipeline_model_parallel_rank": String(part.stage),
         "virtual_pipeline_chunks": String(part.chunks),
         "data_parallel_size": String(dataParallel), "distributed_optimizer": sharded ? "true" : "false"]
    }

    /// How a checkpoint was split over model-parallel ranks (read from its first rank file).
    struct StoredLayout: Equatable {
        var tensorParallel: Int
        var pipelineParallel: Int
        var chunks: Int

        /// Reads it from a rank file's metadata (files without pipeline fields: one stage).
        init(_ file: SafeTensorsFile, path: String) throws(TrainingError) {
            tensorParallel = try number("tensor_model_parallel_size", in: file, path: path, fallback: 1, minimum: 1)
            pipelineParallel = try number("pipeline_model_parallel_size", in: file, path: path, fallback: 1, minimum: 1)
            chunks = try number("virtual_pipeline_chunks", in: file, path: path, fallback: 1, minimum: 1)
        }

        init(tensorParallel: Int, pipelineParallel: Int, chunks: Int) {
            self.tensorParallel = tensorParallel
            self.pipelineParallel = pipelineParallel
            self.chunks = chunks
        }

        /// The folder of (tensorRank, pipelineRank) under this layout.
        func rankDirectoryName(tensorRank: Int, pipelineRank: Int) -> String {
            Checkpoint.rankDirectoryName(tensorRank: tensorRank, pipelineRank: pipelineParallel > 1 ? pipelineRank : nil)
        }

        /// `megatron convert` flags that reshard a checkpoint into this layout.
        func convertFlags(numLayers: Int) -> String {
            "--target-tensor-model-parallel-size \(tensorParallel) --target-pipeline-model-parallel-size \(pipelineParallel)"
                + (chunks > 1 ? " --target-num-layers-per-virtual-pipeline-stage \(numLayers / (pipelineParallel * chunks))" : "")
        }

        /// The part of the model that pipeline rank `stage` holds under this layout.
        func part(numLayers: Int, stage: Int, path: String) throws(TrainingError) -> GPTPipelinePart {
            do { return try GPTPipelinePart(numLayers: numLayers, stages: pipelineParallel, stage: stage, chunks: chunks) } catch {
                throw .checkpoint(path: path, reason: "its layout does not fit the model: \(error.description)")
            }
        }

        var description: String {
            "TP \(tensorParallel), PP \(pipelineParallel)" + (chunks > 1 ? " with \(chunks) model chunks per stage" : "")
        }
    }

    /// Whether `directory` has never held a checkpoint: it is missing, or holds neither a tracker
    /// file nor an `iter_` folder (Megatron's first launch of a job script that passes the same
    /// folder to `--save` and `--load`). An `iter_` folder without a tracker is an error, so that
    /// starting afresh never overwrites it.
    public static func isUnused(_ directory: String) throws(TrainingError) -> Bool {
        let files = FileManager.default
        if PathKind(directory) == .file {
            throw .checkpoint(path: directory, reason: "is a file, not a checkpoint folder")
        }
        if files.fileExists(atPath: directory + "/" + trackerName) { return false }
        let entries = (try? files.contentsOfDirectory(atPath: directory)) ?? []
        if let saved = entries.sorted().first(where: { $0.hasPrefix("iter_") }) {
            throw .checkpoint(path: directory, reason: "it holds \(saved) but no \(trackerName); write the iteration "
                + "to load into \(trackerName), or give an empty --load folder to start from scratch")
        }
        return true
    }

    /// The iteration named by `directory`'s tracker file.
    public static func latestIteration(in directory: String) throws(TrainingError) -> Int {
        let path = directory + "/" + trackerName
        let text: String
        guard FileManager.default.fileExists(atPath: directory) else {
            throw .checkpoint(path: directory, reason: "the folder does not exist")
        }
        do { text = String(decoding: try MappedFile.read(path: path), as: UTF8.self) } catch {
            throw .checkpoint(path: directory, reason: "no \(trackerName) (\(error.reason)): no checkpoint was saved there")
        }
        guard let iteration = Int(text.filter { !$0.isWhitespace }), iteration >= 0 else {
            throw .checkpoint(path: path, reason: "does not hold an iteration number")
        }
        return iteration
    }

    /// The latest iteration's folder in `directory` and the first rank's file in it (`mp_rank_00`
    /// or `mp_rank_00_000`), which says how the checkpoint is split.
    static func latestFirstRank(in directory: String) throws(TrainingError)
        -> (iterationDirectory: String, iteration: Int, file: SafeTensorsFile, path: String, layout: StoredLayout) {
        let iteration = try latestIteration(in: directory)
        let iterationDirectory = directory + "/" + directoryName(iteration: iteration)
        let files = FileManager.default
        guard files.fileExists(atPath: iterationDirectory) else {
            throw .checkpoint(path: directory, reason: "\(trackerName) names iteration \(iteration) but its folder "
                + "\(directoryName(iteration: iteration)) is missing")
        }
        var candidate = iterationDirectory + "/" + rankDirectoryName(tensorRank: 0)
        if !files.fileExists(atPath: candidate) {
            candidate = iterationDirectory + "/" + rankDirectoryName(tensorRank: 0, pipelineRank: 0)
            guard files.fileExists(atPath: candidate) else {
                throw .checkpoint(path: iterationDirectory, reason: "the folder of the first rank is missing (neither "
                    + "\(rankDirectoryName(tensorRank: 0)) nor \(rankDirectoryName(tensorRank: 0, pipelineRank: 0)))")
            }
        }
        let (file, path) = try CheckpointFiles.openModel(in: candidate)
        return (iterationDirectory, iteration, file, path, try StoredLayout(file, path: path))
    }

    /// An integer from a rank file's metadata (`fallback` when absent, e.g. older files).
    static func number(_ key: String, in file: SafeTensorsFile, path: String, fallback: Int? = nil,
                       minimum: Int = 0) throws(TrainingError) -> Int {
        guard let text = file.metadata[key] else {
            if let fallback { return fallback }
            throw .checkpoint(path: path, reason: "metadata \(key) is missing")
        }
        guard let value = Int(text) else { throw .checkpoint(path: path, reason: "metadata \(key) is not a number: \(text)") }
        guard value >= minimum else {
            throw .checkpoint(path: path, reason: "metadata \(key) is \(value); it must be at least \(minimum)")
        }
        return value
    }

    /// Loads this rank's part of the latest checkpoint in `directory` into `model` and, unless
    /// `readsMoments` is false (a fresh optimizer), `moments`;
    /// throws if it was made for another model shape or model-parallel layout, or is damaged.
    public static func load(from directory: String, model: GPTModel, moments: Moments,
                            readsMoments: Bool = true) throws(TrainingError) -> State {
        let first = try latestFirstRank(in: directory)
        let wanted = StoredLayout(tensorParallel: model.tensorParallelSize, pipelineParallel: model.part.stages, chunks: model.part.chunks)
        guard first.layout == wanted else {
            throw .checkpoint(path: first.path, reason: "it was saved with \(first.layout.description) but this run uses "
                + "\(wanted.description); reshard it with megatron convert \(wanted.convertFlags(numLayers: model.config.numLayers))")
        }
        let rankDirectory = first.iterationDirectory + "/" + rankDirectoryName(of: model)
        let (file, path) = try CheckpointFiles.openModel(in: rankDirectory)
        let expected = modelDescription(model.config).serialized
        guard let stored = file.metadata["model"] else {
            throw .checkpoint(path: path, reason: "no model description in its metadata")
        }
        guard stored == expected else {
            throw .checkpoint(path: path, reason: "it holds the model \(stored) but this run asks for \(expected)")
        }
        guard try StoredLayout(file, path: path) == wanted,
              try number("tensor_model_parallel_rank", in: file, path: path, fallback: 0) == model.tensorParallelRank,
              try number("pipeline_model_parallel_rank", in: file, path: path, fallback: 0) == model.part.stage else {
            throw .checkpoint(path: path, reason: "it is not the file of \(rankDirectoryName(of: model)) under \(wanted.description)")
        }
        let state = try State(file, path: path)
        if model.keepsMasterWeights {
            try CheckpointFiles.read(file, path: path, prefix: "", into: model.params)
            try CheckpointFiles.requireFinite(model.params, path: path)
            model.weightsDidChange()
        } else {
            // Read whole for a moment: the optimizer keeps its shard, the model its copies.
            let whole = ParameterStore(layout: model.layout)
            try CheckpointFiles.read(file, path: path, prefix: "", into: whole)
            try CheckpointFiles.requireFinite(whole, path: path)
            moments.masterHolder.restoreMasters(from: whole.buffer.pointer)
            model.setWeights(from: whole)
        }
        guard readsMoments else { return state }  // --finetune, --no-load-optim: the optimizer starts afresh
        switch moments {
        case .whole(let optimizer):
            try CheckpointFiles.readMoments(in: rankDirectory, model: file, path: path, into: optimizer.m, optimizer.v)
            optimizer.restore(step: state.optimizerStep)
        case .sharded(let optimizer):
            // Whole moments of this TP rank, of which this DP rank keeps its slice.
            let m = ParameterStore(layout: model.layout), v = ParameterStore(layout: model.layout)
            try CheckpointFiles.readMoments(in: rankDirectory, model: file, path: path, into: m, v)
            optimizer.restore(m: m.buffer.pointer, v: v.buffer.pointer, step: state.optimizerStep)
        }
        return state
    }

    /// The whole model of the latest checkpoint in `directory` (model-parallel shards merged),
    /// built from the configuration stored in it (for evaluation, generation and export; the
    /// optimizer state is not read and no gradients are allocated), computing in `precision`.
    public static func loadModel(from directory: String, precision: ComputePrecision = .fp32)
        throws(TrainingError) -> (model: GPTModel, iteration: Int) {
        let config = try storedModelConfig(in: directory)
        let model: GPTModel
        do { model = try GPTModel(config: config, precision: precision, forInference: true) } catch {
            throw .checkpoint(path: directory, reason: error.description)
        }
        // The shards are read (and merged) straight into the model's weights.
        let merged = try MergedCheckpoint(directory: directory, moments: false, into: model.params)
        model.weightsDidChange()
        return (model, merged.iteration)
    }

    /// `loadModel` for the commands that run a GPT (evaluate, generate, serve): a BERT
    /// checkpoint is refused by name.
    public static func loadGPT(from directory: String, precision: ComputePrecision = .fp32, command: String)
        throws(TrainingError) -> (model: GPTModel, iteration: Int) {
        if try storedModelConfig(in: directory).bert != nil {
            throw .checkpoint(path: directory, reason: "this is a BERT checkpoint; `megatron \(command)` runs GPTs (BERT's masked-LM and sentence-order validation runs in `train --model-type bert`)")
        }
        return try loadModel(from: directory, precision: precision)
    }

    /// The model configuration stored in a checkpoint's rank file (`path` names it in errors).
    static func storedModelConfig(_ file: SafeTensorsFile, path: String) throws(TrainingError) -> GPTConfig {
        guard let text = file.metadata["config"] else {
            throw .checkpoint(path: path, reason: "no model configuration in its metadata")
        }
        let config: GPTConfig
        do { config = try JSONDecoder().decode(GPTConfig.self, from: Data(text.utf8)) } catch {
            throw .checkpoint(path: path, reason: "its metadata config is not a model configuration (\(JSONDecoding.describe(error)))")
        }
        do { try config.validate() } catch {
            throw .checkpoint(path: path, reason: "its metadata config is not a usable model: \(error.description)")
        }
        return config
    }

    /// The model configuration of the latest checkpoint in `directory`.
    public static func storedModelConfig(in directory: String) throws(TrainingError) -> GPTConfig {
        let first = try latestFirstRank(in: directory)
        return try storedModelConfig(first.file, path: first.path)
    }

    /// Saves an imported `model` (Hugging Face, Megatron-LM) into `directory` as a run at iteration
    /// 0 with a fresh optimizer.
    public static func saveImported(_ model: GPTModel, to directory: String) throws(TrainingError) {
        let optimizer = AdamWOptimizer(layout: model.layout, hyperparameters: AdamW.Hyperparameters(learningRate: 0))
        try save(to: directory, model: model, moments: .whole(optimizer),
                 state: State(iteration: 0, consumedSamples: 0, consumedValidSamples: 0, optimizerStep: 0, seed: 1234))
    }

    /// The model a run loading `directory` trains: `requested` (from the run's flags) with what
    /// the stored model fixes instead: its vocabulary and padding (a Megatron-LM import's
    /// padding, a Hugging Face import's softmax over the true vocabulary), its GELU and whether
    /// its output layer is untied. A flag asking for the other GELU or for an untied output layer
    /// the checkpoint does not have is an error, as are another LayerNorm epsilon and a tokenizer
    /// with more ids than the model.
    static func modelConfig(_ requested: GPTConfig, loading directory: String) throws(TrainingError) -> GPTConfig {
        let stored = try storedModelConfig(in: directory)
        guard requested.vocabSize <= stored.acceptedVocabularySize else {
            throw .checkpoint(path: directory, reason: "the tokenizer has \(requested.vocabSize) ids but the checkpoint's model accepts \(stored.acceptedVocabularySize)")
        }
        if requested.exactGELU && !stored.exactGELU {
            throw .checkpoint(path: directory, reason: "--no-bias-gelu-fusion asks for the exact GELU; this checkpoint's model uses the tanh one")
        }
        if requested.layerNormEpsilon != stored.layerNormEpsilon {
            throw .checkpoint(path: directory, reason: "--norm-epsilon \(requested.layerNormEpsilon) differs from the checkpoint's \(stored.layerNormEpsilon)")
        }
        if requested.untieEmbeddingsAndOutputWeights && !stored.untieEmbeddingsAndOutputWeights {
            throw .checkpoint(path: directory, reason: "--untie-embeddings-and-output-weights asks for an output layer of its own; this checkpoint's is tied to the word embedding")
        }
        if requested.bert != stored.bert {
            func describe(_ config: GPTConfig) -> String {
                guard let bert = config.bert else { return "a GPT" }
                return "a \(bert.residualConnectionPostLayerNorm ? "post" : "pre")-LN BERT \(bert.binaryHead ? "with" : "without") the sentence-order head"
            }
            throw .checkpoint(path: directory, reason: "this run trains \(describe(requested)) (--model-type, --bert-layernorm-order, --bert-no-binary-head); the checkpoint holds \(describe(stored))")
        }
        var config = requested
        config.vocabSize = stored.vocabSize
        config.makeVocabSizeDivisibleBy = stored.makeVocabSizeDivisibleBy
        config.maskPaddedVocabulary = stored.maskPaddedVocabulary
        config.exactGELU = stored.exactGELU
        config.untieEmbeddingsAndOutputWeights = stored.untieEmbeddingsAndOutputWeights
        return config
    }

    /// A typed value (the model config, the LR schedule) as JSON through its `Codable`
    /// conformance, which is also how it is read back. Keys are sorted so the same state always
    /// writes the same bytes (Foundation's key order otherwise changes from process to process).
    /// The user's arguments, whose order matters, go through `JSONValue` instead.
    static func canonicalJSON(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            return String(decoding: try encoder.encode(value), as: UTF8.self)
        } catch {
            preconditionFailure("\(type(of: value)) did not encode to JSON: \(error)")
        }
    }

    /// The shape fields a checkpoint must match.
    static func modelDescription(_ config: GPTConfig) -> JSONValue {
        var fields: [(key: String, value: JSONValue)] = [
            ("num_layers", .number(Double(config.numLayers))),
            ("hidden_size", .number(Double(config.hiddenSize))),
            ("num_attention_heads", .number(Double(config.numAttentionHeads))),
            ("max_position_embeddings", .number(Double(config.maxPositionEmbeddings))),
            ("padded_vocab_size", .number(Double(config.paddedVocabSize))),
        ]
        // Only when not 4h, so that the description of a 4h model is what it always was.
        if let ffn = config.ffnHiddenSizeSetting { fields.append(("ffn_hidden_size", .number(Double(ffn)))) }
        if config.untieEmbeddingsAndOutputWeights { fields.append(("untie_embeddings_and_output_weights", .bool(true))) }
        return .object(fields)
    }
}
