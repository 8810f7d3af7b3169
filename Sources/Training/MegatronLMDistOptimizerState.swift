import FileSupport
import Models
import Parameters
import TorchFormat

/// The Adam state of Megatron-LM's `torch_dist` checkpoints, in the layouts megatron-core saves:
/// - in model space: tensors `optimizer.state.exp_avg.<model key>` and
///   `optimizer.state.exp_avg_sq.<model key>`, shaped and stacked as the model's (any TP x PP),
///   for `--bf16` with the fp32 masters: the plain optimizer's `optimizer.state.fp32_param.<model
///   key>` (its step in the common state's `optimizer`, `state.common_step`), or the distributed
///   optimizer's with `--dist-ckpt-optim-fully-reshardable` (sharding `fully_reshardable`),
///   `optimizer.state.param.<model key>` (its step in the common state's `optimizer` param groups);
/// - the distributed optimizer's, with Megatron-LM's default `dp_reshardable` sharding: megatron-core's
///   flat parameter buffer as 1-D tensors
///   `optimizer.distributed.dp_group_idx_0.gbuf_idx_0.dtype_(<param dtype>, torch.float32).bucket_idx_0.{param,exp_avg,exp_avg_sq}`,
///   the parameters from last to first each at the next multiple of 64 elements (each its own
///   chunk), split into buckets (`bucket_idx_<k>`), one such buffer per tensor-parallel rank
///   (`dp_group_idx_<rank>`, of its shards; PP 1), the step in the byte entry
///   `optimizer.distributed.dp_group_idx_0.optimizer`.
extension MegatronLMCheckpoint {
    /// The model (for `--bf16` holding the fp32 masters), iteration and Adam state of the
    /// `torch_dist` checkpoint in iteration folder `folder`.
    static func readDistributedWithOptimizer(folder: String, trackedIteration: Int?) throws(TrainingError)
        -> (model: GPTModel, iteration: Int, optimizer: MegatronLMOptimizerState) {
        let opened = try openDistributed(folder: folder, trackedIteration: trackedIteration)
        let checkpoint = opened.checkpoint
        let bf16 = try optimizerPrecision(opened.arguments, folder: folder)
        let model = try opened.model()
        let m = ParameterStore(layout: model.layout), v = ParameterStore(layout: model.layout)
        let step: Int, distributed: Bool
        if checkpoint.keys.contains(where: { $0.hasPrefix(plainPrefix + "exp_avg.") }) {
            // The distributed optimizer's model-space (fully reshardable) state names its masters `param`.
            let fullyReshardable = opened.common.entries?["optimizer"]?.entries?["param_state_sharding_type"]?.string == "fully_reshardable"
            try opened.place(into: m, prefix: plainPrefix + "exp_avg.")
            try opened.place(into: v, prefix: plainPrefix + "exp_avg_sq.")
            if bf16 { try opened.place(into: model.params, prefix: plainPrefix + (fullyReshardable ? "param." : "fp32_param.")) }
            (step, distributed) = (try commonStep(opened), fullyReshardable)
        } else if checkpoint.keys.contains(where: { $0.hasPrefix(distributedPrefix) }) {
            (step, distributed) = (try readFlatBuffer(opened, into: model, m: m, v: v, bf16: bf16), true)
        } else {
            throw .checkpoint(path: folder, reason: "no optimizer state (saved with --no-save-optim?)")
        }
        if bf16 { model.weightsDidChange() }
        let state = try MegatronLMOptimizerState(m: m, v: v, step: step, arguments: opened.arguments, distributed: distributed, bf16: bf16)
        return (model, opened.iteration, state)
    }

    static let plainPrefix = "optimizer.state.", distributedPrefix = "optimizer.distributed."

    /// The step of a model-space state, in the common state's optimizer entry (nested one level
    /// down for the mixed-precision and distributed optimizers): the plain optimizer's
    /// `state.common_step`, or the distributed one's parameter groups' `step`.
    private static func commonStep(_ opened: OpenedDistributed) throws(TrainingError) -> Int {
        let path = opened.commonFile.path
        guard var optimizer = opened.common.entries?["optimizer"]?.entries else {
            throw .checkpoint(path: path, reason: "no optimizer entry in the common state")
        }
        if optimizer["state"] == nil && optimizer["param_groups"] == nil, let inner = optimizer["optimizer"]?.entries { optimizer = inner }
        let saved = optimizer["state"]?.entries?["common_step"] ?? optimizer["param_groups"]?.items?.first?.entries?["step"]
        guard let step = try stepCount(saved, in: opened.commonFile, key: "step") else {
            throw .checkpoint(path: path, reason: "the optimizer holds no step count (state.common_step or param_groups' step)")
        }
        return step
    }

    /// Reads the distributed optimizer's flat buffers into `m`, `v` (and for bf16 the masters into
    /// the model's weights); returns the step. Tensor parallelism gives one buffer per TP rank
    /// (`dp_group_idx_<rank>`, each of the rank's shards, put back together as Megatron cut them);
    /// a buffer may be split into buckets (`bucket_idx_<k>`, `--overlap-grad-reduce`); pipeline
    /// parallelism and several buffers are not read.
    private static func readFlatBuffer(_ opened: OpenedDistributed, into model: GPTModel, m: ParameterStore, v: ParameterStore,
                                       bf16: Bool) throws(TrainingError) -> Int {
        let checkpoint = opened.checkpoint, folder = checkpoint.folder, layout = model.layout
        let t = try opened.arguments.integer("tensor_model_parallel_size", default: 1)
        let p = try opened.arguments.integer("pipeline_model_parallel_size", default: 1)
        guard p == 1, (1...4096).contains(t) else {
            throw .checkpoint(path: folder, reason: "the distributed optimizer's dp_reshardable state of a run with pipeline_model_parallel_size "
                              + "\(p) is not read (only PP 1 is); save it with --dist-ckpt-optim-fully-reshardable or convert without --load-optimizer")
        }
        let dtype = bf16 ? "torch.bfloat16" : "torch.float32"
        func buffer(_ rank: Int) -> String { "\(distributedPrefix)dp_group_idx_\(rank).gbuf_idx_0.dtype_(\(dtype), torch.float32).bucket_idx_" }
        if let other = checkpoint.keys.first(where: { key in key.hasPrefix(distributedPrefix) && !(0..<t).contains { key.hasPrefix(buffer($0)) } }) {
            throw .checkpoint(path: folder, reason: "the distributed optimizer's \(other) is not read: only one (\(dtype), torch.float32) "
                              + "buffer per tensor-parallel rank is (keys starting \(buffer(0)))")
        }
        let order = try parameterOrder(opened, layout: layout)
        let shards = order.map { TensorShard(name: $0) }
        let fullShapes = order.map { layout.entry($0).spec.shape }
        let counts = zip(shards, fullShapes).map { $0.shape(of: $1, size: t).reduce(1, *) }
        let targets = [(m, "exp_avg"), (v, "exp_avg_sq")] + (bf16 ? [(model.params, "param")] : [])
        for rank in 0..<t {
            let places = try bucketPlaces(checkpoint, buffer: buffer(rank), order: order, counts: counts)
            let buckets = (places.map(\.bucket).max() ?? -1) + 1
            for (store, part) in targets {
                var flats = [[Float]]()
                for bucket in 0..<buckets {
                    let key = "\(buffer(rank))\(bucket).\(part)"
                    guard let tensor = checkpoint.tensors[key],
                          tensor.shape == checkpoint.tensors["\(buffer(rank))\(bucket).exp_avg"]?.shape else {
                        throw .checkpoint(path: folder, reason: "holds no \(key) shaped as its exp_avg")
                    }
                    do { flats.append(try checkpoint.floats(key)) } catch { throw .checkpoint(error) }
                }
                for i in order.indices where rank == 0 || shards[i] != .replicated {
                    flats[places[i].bucket].withUnsafeBufferPointer { values in
                        shards[i].place(values.baseAddress! + places[i].start, into: store.pointer(at: layout.index(of: order[i])!),
                                        fullShape: fullShapes[i], rank: rank, size: t)
                    }
                }
            }
        }
        return try distributedStep(checkpoint)
    }

    /// Where each parameter (`order`, of `counts` elements) lies in one rank's buffer: megatron-core
    /// lays the parameters out from last to first, each at the next multiple of 64 elements,
    /// starting a new bucket (at 0) where the previous one ends. Found by following the chunks
    /// the checkpoint holds (each parameter is one, at its place): a parameter with no chunk at its
    /// place, or a bucket not filled to its end, is an error.
    private static func bucketPlaces(_ checkpoint: DistributedCheckpoint, buffer: String, order: [String], counts: [Int])
        throws(TrainingError) -> [(bucket: Int, start: Int)] {
        var boxes = [Set<[Int]>](), sizes = [Int]()
        while let tensor = checkpoint.tensors["\(buffer)\(boxes.count).exp_avg"], tensor.shape.count == 1 {
            boxes.append(Set(tensor.chunks.map { [$0.offsets[0], $0.sizes[0]] }))
            sizes.append(tensor.shape[0])
        }
        guard !boxes.isEmpty else { throw .checkpoint(path: checkpoint.folder, reason: "holds no \(buffer)0.exp_avg") }
        var places = [(bucket: Int, start: Int)](repeating: (0, 0), count: order.count)
        var bucket = 0, end = 0
        for i in order.indices.reversed() {
            let start = (end + 63) / 64 * 64
            if boxes[bucket].contains([start, counts[i]]) {
                places[i] = (bucket, start)
            } else if end == sizes[bucket], bucket + 1 < boxes.count, boxes[bucket + 1].contains([0, counts[i]]) {
                bucket += 1
                places[i] = (bucket, 0)
            } else {
                throw .checkpoint(path: checkpoint.folder, reason: "\(buffer)\(bucket) has no chunk of \(counts[i]) elements at \(start) for "
                                  + "\(order[i]): its parameters are not laid out in the order this reader derives")
            }
            end = places[i].start + counts[i]
        }
        guard bucket == boxes.count - 1, end == sizes[bucket] else {
            throw .checkpoint(path: checkpoint.folder, reason: "\(buffer)\(bucket) holds \(sizes[bucket]) elements, its parameters end at \(end) "
                              + "(a buffer padded for several data-parallel ranks is not read)")
        }
        return places
    }

    /// The model's parameters in megatron-core's `named_parameters` order, which its buffer
    /// follows: the metadata lists the model's keys in the order the model's sharded state dict
    /// walks them, the stacked layers' keys once (layer 0's walk), so the order is the keys
    /// before the layers, then each layer's keys in turn, then the keys after.
    private static func parameterOrder(_ opened: OpenedDistributed, layout: ParameterLayout) throws(TrainingError) -> [String] {
        let config = opened.config, folder = opened.checkpoint.folder
        let modelKeys = opened.checkpoint.keys.filter { key in modelKeyPrefixes.contains(where: key.hasPrefix) }
        let layerKeys = modelKeys.filter { $0.hasPrefix("decoder.layers.") }
        guard let first = modelKeys.firstIndex(where: { $0.hasPrefix("decoder.layers.") }) else {
            throw .checkpoint(path: folder, reason: "holds no decoder.layers tensors")
        }
        var keys = Array(modelKeys[..<first].filter { !$0.hasPrefix("decoder.layers.") })
        for layer in 0..<config.numLayers {
            keys += layerKeys.map { "decoder.layers.\(layer)." + $0.dropFirst("decoder.layers.".count) }
        }
        keys += modelKeys[first...].filter { !$0.hasPrefix("decoder.layers.") }
        var names = [String]()
        for key in keys {
            guard let name = try ourName(key, firstLayer: 0, untied: config.untieEmbeddingsAndOutputWeights, path: folder) else { continue }
            guard layout.index(of: name) != nil else { throw .checkpoint(path: folder, reason: "\(key) is not a parameter of this GPT") }
            names.append(name)
        }
        guard names.count == layout.specs.count, Set(names) == Set(layout.specs.map(\.name)) else {
            throw .checkpoint(path: folder, reason: "the model keys in .metadata do not name each of the model's \(layout.specs.count) "
                              + "parameters once (\(names.count) found), so the flat buffer's order cannot be derived")
        }
        return names
    }

    /// The distributed optimizer's step: its parameter groups' `step`, in the byte entry
    /// `optimizer.distributed.dp_group_idx_0.optimizer/shard_0_1` (a `torch.save` of a list).
    private static func distributedStep(_ checkpoint: DistributedCheckpoint) throws(TrainingError) -> Int {
        let entry = distributedPrefix + "dp_group_idx_0.optimizer/shard_0_1"
        let file: TorchFile
        do { file = try checkpoint.torchFile(ofBytes: entry) } catch { throw .checkpoint(error) }
        guard let groups = file.root.items?.first?.entries?["param_groups"]?.items?.compactMap(\.entries), !groups.isEmpty,
              let step = try stepCount(groups.first?["step"], in: file, key: "step") else {
            throw .checkpoint(path: file.path, reason: "the distributed optimizer's param_groups hold no step count")
        }
        return step
    }
}
