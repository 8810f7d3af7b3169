/// Which activations a model chunk keeps for its backward and which it recomputes, Megatron's
/// `--recompute-granularity`, `--recompute-method` and `--recompute-num-layers`
/// (Korthikanti et al. 2022).
///
/// - `full`: groups of layers keep only their input; the backward re-runs the group's forward
///   (the same kernels on the same input, so the same bits) and then its backward. With
///   `uniform` every layer of a chunk is recomputed, in groups of `numLayers`; with `block` only
///   the first `numLayers` layers of each chunk, one by one, and the rest keep everything.
/// - `selective`: every layer keeps everything except the attention core's output and its
///   log-sum-exp statistics, which the backward recomputes from the saved QKV (the kernel never
///   stores the `s x s` probabilities, so this is what is left to drop).
public struct ActivationRecomputation: Sendable, Equatable, CustomStringConvertible {
    /// What is recomputed.
    public enum Granularity: String, Sendable, CaseIterable {
        case none, full, selective
    }

    /// How `full` chooses the layers (Megatron's `--recompute-method`).
    public enum Method: String, Sendable, CaseIterable {
        case uniform, block
    }

    public var granularity: Granularity
    public var method: Method
    /// Layers per group (`uniform`) or recomputed layers per chunk (`block`).
    public var numLayers: Int

    /// Keep every activation.
    public static let none = ActivationRecomputation(granularity: .none)

    public init(granularity: Granularity, method: Method = .uniform, numLayers: Int = 1) {
        self.granularity = granularity
        self.method = method
        self.numLayers = numLayers
    }

    /// The recomputation Megatron's three flags ask for (unset ones take Megatron's defaults:
    /// none, uniform, 1 layer). As in Megatron, the method and the layer count belong to full
    /// recomputation: giving either with another granularity is an error naming it.
    public init(flags granularity: Granularity?, method: Method?, numLayers: Int?) throws(ConfigurationError) {
        let granularity = granularity ?? .none
        if granularity != .full && (method != nil || numLayers != nil) {
            throw .invalid(flag: method != nil ? "--recompute-method" : "--recompute-num-layers", reason: "needs --recompute-granularity full")
        }
        self.init(granularity: granularity, method: method ?? .uniform, numLayers: numLayers ?? 1)
    }

    public var description: String {
        switch granularity {
        case .none: "none"
        case .selective: "selective"
        case .full: "full (\(method.rawValue), \(numLayers) layer\(numLayers == 1 ? "" : "s"))"
        }
    }

    /// Checks that the groups fit a model chunk of `layersPerChunk` layers.
    public func validate(layersPerChunk: Int) throws(ConfigurationError) {
        guard granularity == .full else { return }
        guard numLayers >= 1, numLayers <= layersPerChunk else {
            throw .invalid(flag: "--recompute-num-layers", reason: "\(numLayers) does not fit the \(layersPerChunk) layers of a model chunk (pipeline stage)")
        }
    }

    /// The groups of a chunk of `count` layers whose layers are recomputed (each keeps only its
    /// first layer's input), in order; layers in no group keep everything.
    public func recomputedGroups(layerCount count: Int) -> [Range<Int>] {
        guard granularity == .full, count > 0 else { return [] }
        switch method {
        case .uniform:
            return stride(from: 0, to: count, by: numLayers).map { $0..<min($0 + numLayers, count) }
        case .block:
            return (0..<min(numLayers, count)).map { $0..<($0 + 1) }
        }
    }

    /// Whether the attention core's output of a kept layer is recomputed in the backward.
    public var recomputesAttentionCore: Bool { granularity == .selective }
}
