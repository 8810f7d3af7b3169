import Parameters

extension GPTModel {
    /// Fills `store` (of this model's layout) with Megatron's initialization from the model's
    /// seed: the full model's tensors are generated and, with tensor or pipeline parallelism,
    /// this rank's shards sliced from them, so every layout starts from the same weights.
    func initialize(_ store: ParameterStore) {
        generateFreshTensors(into: { store.pointer(at: $0) }, then: { _ in })
    }

    /// This rank's initial fp32 weights (those of `initialize`), handed to `deliver(values,
    /// layout offset, count)` one tensor at a time, so that the whole model never exists at once
    /// in fp32: a model without master weights takes them (`receiveWeights`), as does its
    /// optimizer.
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
        for (index, shard) in shards.enumerated() {
            guard let source = full.layout.index(of: layout.specs[index].name) else {
                preconditionFailure("the whole model has no \(layout.specs[index].name)")
            }
            shard.slice(full.pointer(at: source), into: tensor.pointer, fullShape: full.layout.specs[source].shape,
                        rank: tensorParallelRank, size: tensorParallelSize)
            deliver(tensor.pointer, layout.offsets[index], layout.specs[index].count)
        }
    }

    /// Writes each of this rank's initial tensors where `destination(index)` says, and calls
    /// `then(index)` after each. With tensor or pipeline parallelism the whole model's tensors
    /// are drawn in its order, one at a time into a buffer of the largest (every layout draws the
    /// same numbers), and this rank slices those it holds: the whole model never exists at once.
    private func generateFreshTensors(into destination: (Int) -> UnsafeMutablePointer<Float>, then: (Int) -> Void) {
        var rng = RandomGenerator(seed: seed)
        if tensorParallelSize == 1 && part.isWhole {
            for (index, spec) in layout.specs.enumerated() {
                Self.initialize(spec, into: destination(index), config: config, rng: &rng)
                then(index)
            }
            return
        }
        let whole = Self.parameterSpecs(config)
        let tensor = FloatBuffer(count: whole.map(\.count).max() ?? 0)
        var held = [String: Int]()
        for (index, spec) in layout.specs.enumerated() { held[spec.name] = index }
        var sliced = 0
        for spec in whole {
            Self.initialize(spec, into: tensor.pointer, config: config, rng: &rng)
            guard let index = held[spec.name] else { continue }
            shards[index].slice(tensor.pointer, into: destination(index), fullShape: spec.shape, rank: tensorParallelRank,
                                size: tensorParallelSize)
            then(index)
            sliced += 1
        }
        precondition(sliced == layout.specs.count, "the whole model lacks some of this rank's tensors")
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
