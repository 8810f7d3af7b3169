/// Per-device memory of a training layout (REFERENCE sections 5 and 6).
public enum MemoryModel {
    /// Numeric format of the model weights.
    public enum Precision: String, Sendable, CaseIterable {
        /// bf16/fp16 weights with fp32 gradients, master weights and Adam moments.
        case mixed16
        /// fp32 everything.
        case fp32
    }

    /// Bytes of weights, gradients and optimizer state per parameter (Megatron's
    /// distributed-optimizer table). Mixed precision: 18 (2 weight + 4 grad + 12 master/m/v), or
    /// 6 + 12/DP with ZeRO-1 sharding of master weights and moments. fp32: 16, or 8 + 8/DP.
    public static func bytesPerParameter(precision: Precision, distributedOptimizer: Bool,
                                         dataParallel: Int) -> Double {
        let dp = Double(max(1, dataParallel))
        switch (precision, distributedOptimizer) {
        case (.mixed16, false): return 18
        case (.mixed16, true): return 6 + 12 / dp
        case (.fp32, false): return 16
        case (.fp32, true): return 8 + 8 / dp
        }
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
