import ArgumentParser
import Models
import Optimizer
import Kernels
import Training

/// `megatron convert`: Hugging Face GPT-2 directories to and from this project's checkpoints, and
/// checkpoints resharded for another tensor-parallel size.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert between Hugging Face GPT-2 (config.json + model.safetensors) and megatron-swift checkpoints, or reshard a checkpoint.",
        discussion: """
        --input CKPT_DIR --output CKPT_DIR --target-tensor-model-parallel-size N: the latest
        checkpoint (weights and Adam moments) split for N tensor-parallel ranks; `train --load`
        resumes it under any data-parallel size, with or without --use-distributed-optimizer.
        --input-format hf --input HF_DIR --output CKPT_DIR: a checkpoint at iteration 0 (fresh
        optimizer state) that `train --load`, `evaluate` and `generate` accept.
        --output-format hf --input CKPT_DIR --output HF_DIR: a directory that
        transformers' GPT2LMHeadModel.from_pretrained loads with the same logits.
        """)

    enum Format: String, ExpressibleByArgument { case hf, megatron }

    @Option(name: .long) var inputFormat: Format = .megatron
    @Option(name: .long) var outputFormat: Format = .megatron
    @Option(name: .long) var input: String
    @Option(name: .long) var output: String
    @Option(name: .long, help: "End-of-text id written as bos/eos_token_id in config.json (hf output).")
    var eosTokenId: Int32?
    @Option(name: .long, help: "Tensor-parallel size of the written checkpoint (megatron output).")
    var targetTensorModelParallelSize: Int?

    func validate() throws {
        if let target = targetTensorModelParallelSize {
            guard target >= 1 else { throw ValidationError("--target-tensor-model-parallel-size must be at least 1, got \(target)") }
            guard outputFormat == .megatron else {
                throw ValidationError("--target-tensor-model-parallel-size needs --output-format megatron")
            }
        } else if inputFormat == outputFormat {
            throw ValidationError("--input-format and --output-format are both \(inputFormat.rawValue); nothing to convert "
                + "(give --target-tensor-model-parallel-size to reshard)")
        }
    }

    func run() throws {
        if inputFormat == .hf {
            let model = try HuggingFaceCheckpoint.read(directory: input)
            let optimizer = AdamWOptimizer(layout: model.layout, hyperparameters: AdamW.Hyperparameters(learningRate: 0))
            try Checkpoint.save(to: output, model: model, moments: .whole(optimizer),
                                state: Checkpoint.State(iteration: 0, consumedSamples: 0, consumedValidSamples: 0,
                                                        optimizerStep: 0, seed: 1234))
            if let target = targetTensorModelParallelSize, target > 1 {
                try MergedCheckpoint(directory: output, moments: true).reshard(to: output, tensorParallel: target)
            }
            print("wrote \(output)/\(Checkpoint.directoryName(iteration: 0)) (\(model.layout.totalCount) parameters)")
        } else if outputFormat == .megatron, let target = targetTensorModelParallelSize {
            let merged = try MergedCheckpoint(directory: input, moments: true)
            try merged.reshard(to: output, tensorParallel: target)
            print("wrote \(output)/\(Checkpoint.directoryName(iteration: merged.iteration)): tensor-parallel size "
                + "\(merged.tensorParallel) -> \(target)")
        } else {
            let (model, iteration) = try Checkpoint.loadModel(from: input)
            try HuggingFaceCheckpoint.write(model, to: output, eosTokenID: eosTokenId)
            print("wrote \(output)/config.json and model.safetensors from iteration \(iteration)")
        }
    }
}
