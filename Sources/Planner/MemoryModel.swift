/// Per-device memory of a training layout (REFERENCE sections 5 and 6).
public enum MemoryModel {
    /// Numeric format of training (Megatron's `--fp16`, `--bf16`, or neither).
    public enum Precision: String, Sendable, CaseIterable {
        /// fp16 weights and gradients; fp32 master weights and Adam moments.
        case fp16
        /// bf16 weights, fp32 gradients (accumulated and reduced in fp32), master weights, moments.
        case bf16
        /// fp32 everything.
        case fp32

        /// Bytes of one activation element.
        public var activationBytes: Double { self == .fp32 ? 4 : 2 }
        /// Bytes of one gradient element as it is reduced across data-parallel ranks.
        public var gradientBytes: Double { self == .fp16 ? 2 : 4 }
        /// Bytes of one model weight element (what the distributed optimizer all-gathers).
        public var weightBytes: Double { self == .fp32 ? 4 : 2 }
    }

    /// Bytes of weights, gradients and optimizer state per parameter (Megatron's
    /// distributed-optimizer table): fp16 20 (2 weight + 2 grad + 16 master/m/v and fp32 grad
    /// copy) or 4 + 16/DP; bf16 18 (2 + 4 + 12) or 6 + 12/DP; fp32 16 or 8 + 8/DP, the
    /// distributed optimizer sharding what is divided by DP.
    public static func bytesPerParameter(precision: Precision, distributedOptimizer: Bool,
                                         dataParallel: Int) -> Double {
        let dp = Double(max(1, dataParallel))
        switch (precision, distributedOptimizer) {
        case (.fp16, false): return 20
        case (.fp16, true): return 4 + 16 / dp
        case (.bf16, false): return 18
        case (.bf16, true): return 6 + 12 / dp
        case (.fp32, false): return 16
        case (.fp32, true): return 8 + 8 / dp
        }
    }

    /// This binary's bytes of weights, gradients and optimizer state per parameter: fp32 master
    /// weights in the model (plus a 2-byte bf16 or a 4-byte fp16-valued copy for the GEMMs),
    /// fp32 gradients, and Adam's two fp32 moments, or with ZeRO-1 a 1/DP shard of them (the
    /// gradients reduce-scattered and the weights all-gathered in place): fp32 16 or 8 + 8/DP,
    /// bf16 18, fp16 20. bf16 and fp16 with ZeRO-1 shard the master weights too: the copy + 4
    /// (gradients) + 12/DP (moments and master shard, Megatron's) + 4 bytes for each parameter
    /// the model reads in fp32, `fp32ReadFraction` of them (LayerNorms, biases; the
    /// all-gather's staging, at most 1 MiB per rank, is left out).
    public static func megatronSwiftBytes(precision: Precision, distributedOptimizer: Bool, dataParallel: Int,
                                          fp32ReadFraction: Double = 0) -> (weights: Double, gradients: Double, optimizer: Double) {
        let copy: Double = switch precision {
        case .fp32: 0
        case .bf16: 2
        case .fp16: 4
        }
        let dp = Double(max(1, dataParallel))
        guard distributedOptimizer && dataParallel > 1 else { return (4 + copy, 4, 8) }
        return precision == .fp32 ? (4, 4, 8 / dp) : (copy + 4 * fp32ReadFraction, 4, 12 / dp)
    }

    /// How activations inside a transformer layer are kept (Korthikanti et al. 2022, table 2).
    public struct ActivationOptions: Sendable, Equatable {
        public var tensorParallel: Int
        public var sequenceParallel: Bool
        public var recompute: CostModel.Recompute

        public init(tensorParallel: Int = 1, sequenceParallel: Bool = false, recompute: CostModel.Recompute = .none) {
            self.tensorParallel = tensorParallel
            self.sequenceParallel = sequenceParallel
            self.recompute = recompute
        }
    }

    /// Activation bytes one transformer layer keeps for one micro-batch (16-bit activations,
    /// 1-byte dropout masks, as in Korthikanti et al. table 2): `s` sequence length, `b`
    /// micro-batch, `h` hidden size, `a` heads.
    public static func activationBytesPerLayer(seqLength s: Int, microBatch b: Int, hidden h: Int, heads a: Int,
                                               options: ActivationOptions) -> Double {
        let s = Double(s), b = Double(b), h = Double(h), a = Double(a), t = Double(max(1, options.tensorParallel))
        let sbh = s * b * h
        switch (options.recompute, options.sequenceParallel, options.tensorParallel > 1) {
        case (.full, _, _): return 2 * sbh / (options.sequenceParallel ? t : 1)
        case (.selective, true, _): return 34 * sbh / t
        case (.selective, false, _): return sbh * (10 + 24 / t)
        case (.none, true, _): return sbh / t * (34 + 5 * a * s / h)
        case (.none, false, true): return sbh * (10 + 24 / t + 5 * a * s / (h * t))
        case (.none, false, false): return sbh * (34 + 5 * a * s / h)
        }
    }
}
