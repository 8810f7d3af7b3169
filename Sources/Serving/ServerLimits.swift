/// What `megatron serve` accepts before it refuses: bounded work, bounded memory.
public struct ServerLimits: Sendable {
    /// Requests waiting for the model; one more is answered 503 at once.
    public var queueCapacity = 64
    /// Largest request body, bytes.
    public var maxBodyBytes = 1 << 20
    /// Most prompts in one request.
    public var maxPrompts = 64
    /// Most tokens to generate per prompt.
    public var maxNewTokens = 1024

    public init() {}
}
