/// What makes a `GPTConfig` Megatron's BERT (Devlin et al. 2019 as Megatron-LM trains it).
public struct BERTSettings: Codable, Sendable, Equatable {
    /// Megatron's `--apply-residual-connection-post-layernorm`: each residual branch adds to the
    /// LayerNorm's output instead of its input. On (with the layers' LayerNorms playing the role
    /// of BERT's embedding and post-branch LayerNorms) this is the original post-LN BERT; off is
    /// Megatron-LM's rearrangement (pre-LN, its default), which lets BERT scale past 336M.
    public var residualConnectionPostLayerNorm: Bool
    /// Segment ids a token may carry: 2 (sentences A and B) with a head on the pooled first
    /// token, as Megatron sets it, else 0 (no token-type embedding; the ids are not read).
    public var tokenTypes: Int
    /// `--bert-binary-head`: with `head == .pretraining`, the sentence-order (or next-sentence)
    /// head on the pooled first token, its loss added to the masked-LM loss.
    public var binaryHead: Bool
    /// What the model predicts: pretraining's masked LM (and sentence order), or a fine-tuning
    /// task's classes from the pooled first token.
    public var head: BERTHead

    public init(residualConnectionPostLayerNorm: Bool = false, tokenTypes: Int? = nil, binaryHead: Bool = true,
                head: BERTHead = .pretraining) {
        self.residualConnectionPostLayerNorm = residualConnectionPostLayerNorm
        self.binaryHead = binaryHead
        self.head = head
        self.tokenTypes = tokenTypes ?? (binaryHead || head != .pretraining ? 2 : 0)
    }

    private enum CodingKeys: String, CodingKey { case residualConnectionPostLayerNorm, tokenTypes, binaryHead, head }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(residualConnectionPostLayerNorm: try c.decode(Bool.self, forKey: .residualConnectionPostLayerNorm),
                  tokenTypes: try c.decode(Int.self, forKey: .tokenTypes), binaryHead: try c.decode(Bool.self, forKey: .binaryHead),
                  head: try c.decodeIfPresent(BERTHead.self, forKey: .head) ?? .pretraining)
    }

    /// Whether the model has a head on the pooled first token (sentence order or a task's).
    var poolsFirstToken: Bool { head != .pretraining || binaryHead }
}

/// The head of a BERT model (Megatron-LM's `BertModel`, `Classification`, `MultipleChoice`).
public enum BERTHead: Codable, Sendable, Equatable {
    /// Masked LM, plus sentence order with `BERTSettings.binaryHead`.
    case pretraining
    /// `classes` logits from the pooled first token (MNLI, QQP, BoolQ): `classification_head`.
    case classification(classes: Int)
    /// One logit per sequence from its pooled first token, `choices` consecutive sequences per
    /// question, softmax over them (RACE): `multichoice_head`.
    case multipleChoice(choices: Int)

    /// Outputs of the linear layer on the pooled token (2 for sentence order).
    var outputs: Int {
        switch self {
        case .pretraining: 2
        case let .classification(classes): classes
        case .multipleChoice: 1
        }
    }

    /// Sequences per label: the choices of a question, else 1.
    public var sequencesPerLabel: Int {
        if case let .multipleChoice(choices) = self { return choices }
        return 1
    }

    /// Classes a label picks from.
    public var classes: Int {
        switch self {
        case .pretraining: 2
        case let .classification(classes): classes
        case let .multipleChoice(choices): choices
        }
    }
}
