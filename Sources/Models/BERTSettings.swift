/// What makes a `GPTConfig` Megatron's BERT (Devlin et al. 2019 as Megatron-LM trains it).
public struct BERTSettings: Codable, Sendable, Equatable {
    /// Megatron's `--apply-residual-connection-post-layernorm`: each residual branch adds to the
    /// LayerNorm's output instead of its input. On (with the layers' LayerNorms playing the role
    /// of BERT's embedding and post-branch LayerNorms) this is the original post-LN BERT; off is
    /// Megatron-LM's rearrangement (pre-LN, its default), which lets BERT scale past 336M.
    public var residualConnectionPostLayerNorm: Bool
    /// `--num-tokentypes`: segment ids a token may carry (2: sentence A and B).
    public var tokenTypes: Int
    /// `--bert-binary-head`: the sentence-order (or next-sentence) head on the pooled first
    /// token, and its loss added to the masked-LM loss.
    public var binaryHead: Bool

    public init(residualConnectionPostLayerNorm: Bool = false, tokenTypes: Int = 2, binaryHead: Bool = true) {
        self.residualConnectionPostLayerNorm = residualConnectionPostLayerNorm
        self.tokenTypes = tokenTypes
        self.binaryHead = binaryHead
    }
}
