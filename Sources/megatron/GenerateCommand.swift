import ArgumentParser
import Models
import Tokenizer
import Training
import FileSupport

/// `megatron generate`: continue prompts with a trained checkpoint (KV-cached decoding).
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text from a checkpoint: greedy (--temperature 0) or sampled with top-k / top-p.",
        discussion: "An empty prompt starts from <|endoftext|>. Generation stops at <|endoftext|>, after --tokens-to-generate tokens, or at the model's last position.")

    @Option(name: .flag(.load), help: .flag(.load))
    var load: String

    @OptionGroup var tokenizer: TokenizerOptions
    @OptionGroup var deviceOptions: DeviceOptions

    @Option(name: .long, help: "Prompt text (repeat for several).")
    var prompt: [String] = [""]

    // Numbers take the next word even when it starts with '-' ("--temperature -1" is then a
    // range error, not a missing value).
    @Option(name: .long, parsing: .unconditional) var tokensToGenerate = 64
    @Option(name: .long, parsing: .unconditional, help: "0 for greedy decoding.")
    var temperature: Float = 1.0
    @Option(name: .long, parsing: .unconditional, help: "Sample among the k most likely tokens (0: all).")
    var topK = 0
    @Option(name: .long, parsing: .unconditional, help: "Nucleus sampling threshold (0: off); not with --top-k.")
    var topP: Float = 0
    @Option(name: .long) var seed: UInt64 = 1234
    @Flag(name: .long, help: "Print JSON lines {\"prompt\", \"text\", \"tokens\"}.")
    var json = false
    @Flag(name: .long, help: "bf16 GEMMs and a bf16 key/value cache (as train --bf16).")
    var bf16 = false
    @Option(name: .flag(.microBatchSize), help: .flag(.microBatchSize, "Prompts decoded together (default 8)."))
    var microBatchSize = 8

    func validate() throws {
        guard tokensToGenerate >= 0 else { throw ValidationError("--tokens-to-generate must not be negative") }
        guard microBatchSize >= 1 else { throw ValidationError("--micro-batch-size must be at least 1") }
    }

    func run() throws {
        try deviceOptions.activate()
        let options = SamplingOptions(temperature: temperature, topK: topK, topP: topP)
        try options.validate()
        let tokenizer = try tokenizer.load()
        let (model, _) = try Checkpoint.loadGPT(from: load, precision: bf16 ? .bf16 : .fp32, command: "generate")
        guard tokenizer.vocabularySize <= model.config.paddedVocabSize else {
            throw ValidationError("the tokenizer has \(tokenizer.vocabularySize) ids but the checkpoint's model only \(model.config.paddedVocabSize)")
        }
        let eod = tokenizer.endOfDocumentID
        var prompts = [[Int32]]()
        for text in prompt {
            var ids = tokenizer.encode(text)
            if ids.isEmpty {
                guard let eod else { throw ValidationError("an empty prompt needs an <|endoftext|> token") }
                ids = [eod]
            }
            guard ids.count < model.config.maxPositionEmbeddings else {
                throw ValidationError("the prompt has \(ids.count) tokens; the model takes at most \(model.config.maxPositionEmbeddings - 1) before generating")
            }
            prompts.append(ids)
        }
        // Up to --micro-batch-size prompts decode side by side (one forward per step for all).
        let inference = GPTInference(model: model, sequences: min(microBatchSize, prompts.count))
        var results = [[Int32]]()
        for start in stride(from: 0, to: prompts.count, by: inference.sequences) {
            let group = Array(prompts[start..<min(start + inference.sequences, prompts.count)])
            results += try inference.generate(prompts: group, count: tokensToGenerate, vocabularySize: tokenizer.vocabularySize,
                                              options: options, seed: seed, stop: eod)
        }
        for (text, var generated) in zip(prompt, results) {
            if let eod, generated.last == eod { generated.removeLast() }
            let completion = try tokenizer.decode(generated)
            if json {
                print(JSONValue.object([("prompt", .string(text)), ("text", .string(completion)),
                                        ("tokens", .array(generated.map { .number(Double($0)) }))]).serialized)
            } else {
                print(text + completion)
            }
        }
    }
}
