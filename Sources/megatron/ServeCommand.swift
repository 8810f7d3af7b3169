import ArgumentParser
import Serving
import Training

/// `megatron serve`: a checkpoint behind Megatron's text generation API and OpenAI-compatible
/// completions (`Serving/MegatronServer`).
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a checkpoint: Megatron's PUT /api and OpenAI-compatible POST /v1/completions.",
        discussion: """
        Requests are answered by one worker that runs the model, up to 8 prompts decoding side by
        side (continuous batching); up to --queue-size prompts wait or decode, and a request that
        would pass that is refused with 503 at once. Malformed requests get a 400 with a JSON error naming
        the field. SIGTERM or SIGINT stops the server after the requests in flight are answered.
        """)

    @Option(name: .flag(.load), help: .flag(.load))
    var load: String

    @OptionGroup var tokenizer: TokenizerOptions
    @OptionGroup var deviceOptions: DeviceOptions

    @Option(name: .long, help: "Address to listen on (loopback by default).")
    var host = "127.0.0.1"

    @Option(name: .long, help: "Port to listen on (0: any free port, printed at start).")
    var port = 5000

    @Option(name: .long, help: "Requests that may wait for the model; more are answered 503.")
    var queueSize = 64

    @Option(name: .long, help: "Most tokens one prompt may ask to generate.")
    var maxNewTokens = 1024

    @Flag(name: .long, help: "Run the linear layers' GEMMs in bf16 (as train --bf16).")
    var bf16 = false

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535, got \(port)") }
        guard queueSize >= 1 else { throw ValidationError("--queue-size must be at least 1") }
        guard maxNewTokens >= 1 else { throw ValidationError("--max-new-tokens must be at least 1") }
    }

    func run() throws {
        try deviceOptions.activate()
        let tokenizer = try tokenizer.load()
        let (model, iteration) = try Checkpoint.loadGPT(from: load, precision: bf16 ? .bf16 : .fp32, command: "serve")
        guard tokenizer.vocabularySize <= model.config.paddedVocabSize else {
            throw ValidationError("the tokenizer has \(tokenizer.vocabularySize) ids but the checkpoint's model only \(model.config.paddedVocabSize)")
        }
        var limits = ServerLimits()
        limits.queueCapacity = queueSize
        limits.maxNewTokens = maxNewTokens
        let server = MegatronServer(engine: CompletionEngine(model: model, tokenizer: tokenizer), limits: limits,
                                    modelName: load)
        let host = host, port = port
        let banner = "\(load) (iteration \(iteration), \(model.config.numLayers) layers, \(model.config.maxPositionEmbeddings) positions)"
        try BlockingServer.run(host: host, port: port) {
            try await server.application(host: host, port: port) { bound in
                print("> serving \(banner) on http://\(host):\(bound)")
            }.runService()
        }
    }
}
