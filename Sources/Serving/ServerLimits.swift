/// What `megatron serve` accepts before it refuses: bounded work, bounded memory.
public struct ServerLimits: Sendable {
    /// Prompts waiting for the model or decoding; a request that would pass it is answered 503 at once.
    public var queueCapacity = 64
    /// Largest request body, bytes.
    public var maxBodyBytes = 1 << 20
    /// Most prompts in one request.
    public var maxPrompts = 64
    /// Most tokens to generate per prompt.
    public var maxNewTokens = 1024

    public init() {}
}
