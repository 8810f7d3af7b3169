import ArgumentParser
import Models
import Optimizer
import Kernels
import Training

/// `megatron convert`: Hugging Face GPT-2 directories to and from this project's checkpoints.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert between Hugging Face GPT-2 (config.json + model.safetensors) and megatron-swift checkpoints.",
        discussion: """
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

    func validate() throws {
        guard inputFormat != outputFormat else {
            throw ValidationError("--input-format and --output-format are both \(inputFormat.rawValue); nothing to convert")
        }
    }

    func run() throws {
        if inputFormat == .hf {
            let model = try HuggingFaceCheckpoint.read(directory: input)
            let optimizer = AdamWOptimizer(layout: model.layout, hyperparameters: AdamW.Hyperparameters(learningRate: 0))
            try Checkpoint.save(to: output, model: model, optimizer: optimizer,
                                state: Checkpoint.State(iteration: 0, consumedSamples: 0, consumedValidSamples: 0,
                                                        optimizerStep: 0, seed: 1234))
            print("wrote \(output)/\(Checkpoint.directoryName(iteration: 0)) (\(model.layout.totalCount) parameters)")
        } else {
            let (model, iteration) = try Checkpoint.loadModel(from: input)
            try HuggingFaceCheckpoint.write(model, to: output, eosTokenID: eosTokenId)
            print("wrote \(output)/config.json and model.safetensors from iteration \(iteration)")
        }
    }
}
