import Parameters

extension GPTModel {
    /// Fills `store` (of this model's layout) with Megatron's initialization from the model's
    /// seed: the full model is generated and, with tensor or pipeline parallelism, this rank's
    /// shards sliced from it, so every layout starts from the same weights.
    func initialize(_ store: ParameterStore) {
        generateFreshTensors(into: { store.pointer(at: $0) }, then: { _ in })
    }

    /// This rank's initial fp32 weights (those of `initialize`), handed to `deliver(values,
    /// layout offset, count)` one tensor at a time, so that the whole model never exists at once
    /// in fp32 (but for the full model that tensor or pipeline parallelism slices from): a model
    /// without master weights takes them (`receiveWeights`), as does its optimizer.
    public func forEachFreshTensor(_ deliver: (UnsafePointer<Float>, Int, Int) -> Void) {
        let tensor = FloatBuffer(count: layout.specs.map(\.count).max() ?? 0)
        generateFreshTensors(into: { _ in tensor.pointer }, then: { index in
            deliver(tensor.pointer, layout.offsets[index], layout.specs[index].count)
        })
    }

    /// The whole model's fp32 weights as Megatron initializes them from `seed` (every layout
    /// slices its shards from these).
    public static func freshWeights(_ config: GPTConfig, seed: UInt64) -> ParameterStore {
        let full = ParameterStore(layout: ParameterLayout(parameterSpecs(config)))
        initialize(full, config: config, seed: seed)
        return full
    }

    /// This rank's shard of every tensor of `full` (a whole model of this model's configuration),
    /// handed to `deliver(values, layout offset, count)` in layout order.
    public func forEachShard(of full: ParameterStore, _ deliver: (UnsafePointer<Float>, Int, Int) -> Void) {
        let tensor = FloatBuffer(count: layout.specs.map(\.count).max() ?? 0)
        sliceShards(of: full, into: { _ in tensor.pointer }, then: { index in
            deliver(tensor.pointer, layout.offsets[index], layout.specs[index].count)
        })
    }

    /// Writes each of this rank's initial tensors, in layout order, where `destination(index)`
    /// says, and calls `then(index)` after each.
    private func generateFreshTensors(into destination: (Int) -> UnsafeMutablePointer<Float>, then: (Int) -> Void) {
        if tensorParallelSize == 1 && part.isWhole {
            var rng = RandomGenerator(seed: seed)
            for (index, spec) in layout.specs.enumerated() {
                Self.initialize(spec, into: destination(index), config: config, rng: &rng)
                then(index)
            }
            return
        }
        sliceShards(of: Self.freshWeights(config, seed: seed), into: destination, then: then)
    }

    /// Writes this rank's shard of each tensor of the whole model `full`, in layout order, where
    /// `destination(index)` says, and calls `then(index)` after each.
    private func sliceShards(of full: ParameterStore, into destination: (Int) -> UnsafeMutablePointer<Float>,
                             then: (Int) -> Void) {
        for (index, shard) in shards.enumerated() {
            guard let source = full.layout.index(of: layout.specs[index].name) else {
                preconditionFailure("the whole model has no \(layout.specs[index].name)")
            }
            shard.slice(full.pointer(at: source), into: destination(index), fullShape: full.layout.specs[source].shape,
                        rank: tensorParallelRank, size: tensorParallelSize)
            then(index)
        }
    }

    /// Sets a model without master weights from whole fp32 weights (fresh, or a checkpoint's):
    /// rounds them into the low-precision copy and keeps the tensors read in fp32.
    public func setWeights(from whole: ParameterStore) {
        precondition(!keepsMasterWeights, "a model with master weights is set through params")
        receiveWeights(whole.buffer.pointer, start: 0, count: layout.totalCount)
    }

    /// Takes the fp32 values of the layout range `start ..< start + count` (an optimizer's
    /// updated master weights, delivered range by range): rounds them into the low-precision
    /// copy and keeps the parts of the tensors read in fp32.
    public func receiveWeights(_ values: UnsafePointer<Float>, start: Int, count: Int) {
        guard let copy = fp32Copy, let weights = lowPrecisionWeights else {
            preconditionFailure("only a model without master weights receives them")
        }
        precondition(start >= 0 && start + count <= layout.totalCount, "weights delivered outside the layout")
        weights.round(from: values, start: start, count: count)
        copy.store(values, start: start, count: count)
        lowPrecisionCurrent = true
    }
}
