import ArgumentParser
import Foundation
import Models
import Training

/// `megatron convert`: Hugging Face GPT-2 directories to and from this project's checkpoints,
/// Megatron-LM checkpoints into them, and checkpoints resharded for another tensor- or
/// pipeline-parallel layout.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert Hugging Face GPT-2 and Megatron-LM checkpoints to and from megatron-swift's, or reshard a checkpoint.",
        discussion: """
        --input CKPT_DIR --output CKPT_DIR --target-tensor-model-parallel-size T
        [--target-pipeline-model-parallel-size P [--target-num-layers-per-virtual-pipeline-stage N]]:
        the latest checkpoint (weights and Adam moments) split for T tensor-parallel ranks and P
        pipeline stages (a size not given keeps the checkpoint's); `train --load` resumes it
        under that layout with any data-parallel size, with or without --use-distributed-optimizer.
        --input-format hf --input HF_DIR --output CKPT_DIR: a checkpoint at iteration 0 (fresh
        optimizer state) that `train --load`, `evaluate` and `generate` accept.
        --output-format hf --input CKPT_DIR --output HF_DIR: a directory that
        transformers' GPT2LMHeadModel.from_pretrained loads with the same logits.
        --input-format megatron-lm --input MEGATRON_LM_CKPT --output CKPT_DIR: a Megatron-LM
        checkpoint (latest_checkpointed_iteration.txt, iter_NNNNNNN or release; the legacy
        layout's mp_rank_TT[_PPP]/model_optim_rng.pt or a torch_dist checkpoint's
        metadata.json, common.pt, .metadata and *.distcp; any TP x PP) as a checkpoint at
        iteration 0 with a fresh optimizer, its shape taken from the checkpoint's args; with
        --load-optimizer, at its iteration with its Adam state (fp32, or bf16 and fp16 with
        their fp32 master weights and fp16's loss scaler; plain or distributed).
        --output-format megatron-lm --input CKPT_DIR --output MEGATRON_LM_CKPT
        [--target-tensor-model-parallel-size T] [--target-pipeline-model-parallel-size P]
        [--target-num-layers-per-virtual-pipeline-stage N] [--true-vocab-size V]:
        the latest checkpoint's weights in that layout (default TP 1 x PP 1) for Megatron-LM
        (--ckpt-format torch, --finetune or --no-load-optim --no-load-rng).
        (`megatron` is this project's own format.)
        """)

    enum Format: String, ExpressibleByArgument {
        case hf, megatron
        case megatronLM = "megatron-lm"
    }

    @Option(name: .long) var inputFormat: Format = .megatron
    @Option(name: .long) var outputFormat: Format = .megatron
    @Option(name: .long) var input: String
    @Option(name: .long) var output: String
    @Option(name: .long, help: "End-of-text id written as bos/eos_token_id in config.json (hf output).")
    var eosTokenId: Int32?
    @Option(name: .long, help: "Tensor-parallel size of the written checkpoint (megatron output).")
    var targetTensorModelParallelSize: Int?
    @Option(name: .long, help: "Pipeline stages of the written checkpoint (megatron output).")
    var targetPipelineModelParallelSize: Int?
    @Option(name: .long, help: "Layers per model chunk of the interleaved schedule the written checkpoint is for (megatron or megatron-lm output).")
    var targetNumLayersPerVirtualPipelineStage: Int?
    @Flag(name: .long, help: "Also read the Adam state and the run's position (megatron-lm input), so that train --load continues the run.")
    var loadOptimizer = false
    @Option(name: .long, help: "The tokenizer's vocabulary size, which Megatron-LM pads to a multiple of make_vocab_size_divisible_by x TP (megatron-lm output; default: the model's).")
    var trueVocabSize: Int?

    /// Whether a target layout was given (a reshard).
    private var reshards: Bool {
        targetTensorModelParallelSize != nil || targetPipelineModelParallelSize != nil || targetNumLayersPerVirtualPipelineStage != nil
    }

    func validate() throws {
        let resolved = [input, output].map { URL(fileURLWithPath: $0).standardizedFileURL.resolvingSymlinksInPath().path }
        guard resolved[0] != resolved[1] else {
            throw ValidationError("--output must differ from --input: converting in place would replace the checkpoint being read")
        }
        if eosTokenId != nil && outputFormat != .hf { throw ValidationError("--eos-token-id is for --output-format hf") }
        if loadOptimizer && inputFormat != .megatronLM {
            throw ValidationError("--load-optimizer reads a Megatron-LM checkpoint's optimizer (--input-format megatron-lm)")
        }
        if outputFormat == .megatronLM {
            guard inputFormat == .megatron else { throw ValidationError("--output-format megatron-lm takes a megatron-swift checkpoint (--input-format megatron)") }
        } else if trueVocabSize != nil {
            throw ValidationError("--true-vocab-size is for --output-format megatron-lm")
        }
        for (value, flag) in [(targetTensorModelParallelSize, "--target-tensor-model-parallel-size"),
                              (targetPipelineModelParallelSize, "--target-pipeline-model-parallel-size"),
                              (targetNumLayersPerVirtualPipelineStage, "--target-num-layers-per-virtual-pipeline-stage")] {
            if let value, value < 1 { throw ValidationError("\(flag) must be at least 1, got \(value)") }
        }
        if reshards && outputFormat != .megatronLM {
            guard outputFormat == .megatron else {
                throw ValidationError("the --target-... layout flags need --output-format megatron")
            }
        } else if inputFormat == outputFormat {
            throw ValidationError("--input-format and --output-format are both \(inputFormat.rawValue); nothing to convert "
                + "(give --target-tensor-model-parallel-size or --target-pipeline-model-parallel-size to reshard)")
        }
    }

    /// Model chunks per stage for `--target-num-layers-per-virtual-pipeline-stage`.
    private func chunks(numLayers: Int, stages: Int, layersPerChunk: Int) throws -> Int {
        do { return try GPTPipelinePart.chunks(numLayers: numLayers, stages: stages, layersPerChunk: layersPerChunk) } catch {
            switch error {
            case let .invalid(flag, reason): throw ValidationError("--target-\(flag.dropFirst(2)): \(reason)")
            case let .layout(layout): throw ValidationError(layout.description)
            }
        }
    }

    /// Writes `merged` into `output` under the target layout (sizes not given keep the checkpoint's).
    private func reshard(_ merged: MergedCheckpoint) throws -> String {
        let t = targetTensorModelParallelSize ?? merged.tensorParallel
        let p = targetPipelineModelParallelSize ?? merged.pipelineParallel
        // Interleaving is kept unless the pipeline size changes (its chunks would no longer fit).
        var chunks = p == merged.pipelineParallel ? merged.chunks : 1
        if let perChunk = targetNumLayersPerVirtualPipelineStage {
            chunks = try self.chunks(numLayers: merged.config.numLayers, stages: p, layersPerChunk: perChunk)
        }
        try merged.reshard(to: output, tensorParallel: t, pipelineParallel: p, chunks: chunks)
        return "TP \(merged.tensorParallel) x PP \(merged.pipelineParallel) -> TP \(t) x PP \(p)" + (chunks > 1 ? " (\(chunks) chunks per stage)" : "")
    }

    func run() throws {
        if inputFormat == .hf {
            let model = try HuggingFaceCheckpoint.read(directory: input)
            try Checkpoint.saveImported(model, to: output)
            if reshards { _ = try reshard(MergedCheckpoint(directory: output, moments: true)) }
            print("wrote \(output)/\(Checkpoint.directoryName(iteration: 0)) (\(model.layout.totalCount) parameters)")
        } else if inputFormat == .megatronLM {
            let summary = try MegatronLMCheckpoint.convert(from: input, to: output, loadOptimizer: loadOptimizer)
            if reshards { _ = try reshard(MergedCheckpoint(directory: output, moments: true)) }
            print("wrote \(output)/\(summary)")
        } else if outputFormat == .megatronLM {
            let merged = try MergedCheckpoint(directory: input, moments: false)
            let t = targetTensorModelParallelSize ?? 1, p = targetPipelineModelParallelSize ?? 1
            let v = try targetNumLayersPerVirtualPipelineStage.map { try chunks(numLayers: merged.config.numLayers, stages: p, layersPerChunk: $0) } ?? 1
            if merged.config.maskPaddedVocabulary {
                writeError("warning: this model's softmax excludes its \(merged.config.paddedVocabSize - merged.config.vocabSize) padded "
                           + "vocabulary rows (a Hugging Face import); Megatron-LM includes every row of padded_vocab_size\n")
            }
            try MegatronLMCheckpoint.write(merged.params, config: merged.config, iteration: merged.iteration, to: output,
                                           tensorParallel: t, pipelineParallel: p, chunks: v, trueVocabularySize: trueVocabSize)
            let folder = merged.iteration == 0 ? "release" : Checkpoint.directoryName(iteration: merged.iteration)
            print("wrote \(output)/\(folder) for Megatron-LM: TP \(t) x PP \(p)"
                  + (v > 1 ? " (\(v) model chunks per stage)" : "") + ", weights only")
        } else if outputFormat == .megatron {
            let merged = try MergedCheckpoint(directory: input, moments: true)
            let change = try reshard(merged)
            print("wrote \(output)/\(Checkpoint.directoryName(iteration: merged.iteration)): \(change)")
        } else {
            let (model, iteration) = try Checkpoint.loadModel(from: input)
            if let eosTokenId, !(0..<Int32(model.config.vocabSize)).contains(eosTokenId) {
                throw ValidationError("--eos-token-id \(eosTokenId) is not an id of this model's vocabulary (0..<\(model.config.vocabSize))")
            }
            try HuggingFaceCheckpoint.write(model, to: output, eosTokenID: eosTokenId)
            print("wrote \(output)/config.json and model.safetensors from iteration \(iteration)")
        }
    }
}
