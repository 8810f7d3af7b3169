/// What makes a `GPTConfig` Megatron's BERT (Devlin et al. 2019 as Megatron-LM trains it).
public struct BERTSettings: Codable, Sendable, Equatable {
    /// Megatron's `--apply-residual-connection-post-layernorm`: each residual branch adds to the
    /// LayerNorm's output instead of its input. On (with the layers' LayerNorms playing the role
    /// of BERT's embedding and post-branch LayerNorms) this is the original post-LN BERT; off is
    /// Megatron-LM's rearrangement (pre-LN, its default), which lets BERT scale past 336M.
    public var residualConnectionPostLayerNorm: Bool
    /// Segment ids a token may carry: 2 (sentences A and B) with the binary head, as Megatron's
    /// `pretrain_bert.py` sets it, else 0 (no token-type embedding; the ids are not read).
    public var tokenTypes: Int
    /// `--bert-binary-head`: the sentence-order (or next-sentence) head on the pooled first
    /// token, and its loss added to the masked-LM loss.
    public var binaryHead: Bool

    public init(residualConnectionPostLayerNorm: Bool = false, tokenTypes: Int? = nil, binaryHead: Bool = true) {
        self.residualConnectionPostLayerNorm = residualConnectionPostLayerNorm
        self.tokenTypes = tokenTypes ?? (binaryHead ? 2 : 0)
        self.binaryHead = binaryHead
    }
}
