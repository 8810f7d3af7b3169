import FileSupport
import Models
import Parameters
import TorchFormat

/// The distributed optimizer's state in a `torch_dist` checkpoint saved with Megatron-LM's
/// default `dp_reshardable` sharding: megatron-core's flat parameter buffers as 1-D tensors
/// `optimizer.distributed.dp_group_idx_<g>.gbuf_idx_<c>.dtype_(<param dtype>, <grad dtype>).bucket_idx_<k>.{param,exp_avg,exp_avg_sq}`
/// (gradients fp32, or fp16 where an `--fp16` run reduces them in fp16).
/// - One buffer per model-parallel rank, `g` = TP rank + TP size x pipeline stage, of that rank's
///   parameters (its TP shards of its stage's parameters, in `named_parameters` order); with an
///   interleaved pipeline one per model chunk `c` (`gbuf_idx_<c>`; chunk c of stage s holds layers
///   from (c PP + s) x layers / (PP x chunks) on).
/// - The parameters lie from last to first, each at the next multiple of 64 elements; the buffer
///   is split into buckets (`--overlap-grad-reduce`; and under pipeline parallelism the shared
///   word embedding, and the last stage's tied copy of it, each in a bucket of its own); each
///   bucket is saved without its end padding.
/// - Each data-parallel rank saved its contiguous shard of each (padded) bucket: a parameter is
///   one chunk at its place, or several where the shards cut it; padding is chunks of its own.
/// - The step is in the byte entry `optimizer.distributed.dp_group_idx_0.optimizer`, the padded
///   bucket sizes in `...per_bucket_numel`.
extension MegatronLMCheckpoint {
    /// Reads the distributed optimizer's flat buffers into `m`, `v` (and in mixed `precision` the
    /// masters into the model's weights); returns the step. The TP ranks' shards are put back together as
    /// Megatron cut them; the last stage's tied copy of the word embedding is passed over (the
    /// embedding all-reduce keeps its state equal to the first stage's).
    static func readFlatBuffer(_ opened: OpenedDistributed, into model: GPTModel, m: ParameterStore, v: ParameterStore,
                               precision: ComputePrecision) throws(TrainingError) -> Int {
        let checkpoint = opened.checkpoint, folder = checkpoint.folder, layout = model.layout, arguments = opened.arguments
        let t = try arguments.integer("tensor_model_parallel_size", default: 1)
        let p = try arguments.integer("pipeline_model_parallel_size", default: 1)
        let d = try arguments.integer("data_parallel_size", default: 1)
        let layers = opened.config.numLayers
        guard (1...4096).contains(t), (1...4096).contains(p), (1...(1 << 20)).contains(d), layers % p == 0 else {
            throw .checkpoint(path: folder, reason: "args give TP \(t), PP \(p), DP \(d) for \(layers) layers, a layout this reader cannot lay out")
        }
        let chunks = try arguments.modelChunks(pipelineParallel: p, layers: layers), perChunk = layers / (p * chunks)
        // (parameter dtype, gradient dtype): fp32 gradients, or an fp16 run's gradients reduced in fp16.
        let parameterType = "torch." + torchDType(precision)
        let dtype = [parameterType + ", torch.float32", parameterType + ", " + parameterType].first { pair in
            checkpoint.keys.contains { $0.hasPrefix("\(distributedPrefix)dp_group_idx_0.gbuf_idx_0.dtype_(\(pair))") }
        } ?? parameterType + ", torch.float32"
        func buffer(_ group: Int, _ chunk: Int) -> String {
            "\(distributedPrefix)dp_group_idx_\(group).gbuf_idx_\(chunk).dtype_(\(dtype)).bucket_idx_"
        }
        let buffers = (0..<(t * p)).flatMap { group in (0..<chunks).map { buffer(group, $0) } }
        if let other = checkpoint.keys.first(where: { key in key.hasPrefix(distributedPrefix) && !buffers.contains(where: key.hasPrefix) }) {
            throw .checkpoint(path: folder, reason: "the distributed optimizer's \(other) is not read: only one (\(dtype)) buffer per "
                              + "tensor- and pipeline-parallel rank and model chunk is (keys starting \(buffer(0, 0)))")
        }
        let (head, perLayer, tail) = try parameterOrder(opened, layout: layout)
        let tiedCopy = p > 1 && !opened.config.untieEmbeddingsAndOutputWeights
        let targets: [(ParameterStore, String)] = [(m, "exp_avg"), (v, "exp_avg_sq")] + (precision != .fp32 ? [(model.params, "param")] : [])
        for (stage, chunk) in (0..<p).flatMap({ stage in (0..<chunks).map { (stage, $0) } }) {
            // The chunk's parameters; the tied copy last, named as the word embedding it copies.
            let first = (chunk * p + stage) * perChunk, isLast = stage == p - 1 && chunk == chunks - 1
            var order = (stage == 0 && chunk == 0 ? head : []) + perLayer[first..<(first + perChunk)].joined()
            if isLast { order += tail + (tiedCopy ? [wordEmbeddingName] : []) }
            let read = order.indices.filter { !(tiedCopy && isLast && $0 == order.count - 1) }
            let shards = order.map { TensorShard(name: $0) }
            let fullShapes = order.map { layout.entry($0).spec.shape }
            let counts = zip(shards, fullShapes).map { $0.shape(of: $1, size: t).reduce(1, *) }
            for rank in 0..<t {
                let group = rank + t * stage, name = buffer(group, chunk)
                var buckets = [DistributedCheckpoint.Tensor]()
                while let tensor = checkpoint.tensors["\(name)\(buckets.count).exp_avg"], tensor.shape.count == 1 { buckets.append(tensor) }
                guard !buckets.isEmpty else { throw .checkpoint(path: folder, reason: "holds no \(name)0.exp_avg") }
                let cuts = try dataParallelShards(checkpoint, group: group, chunk: chunk, sizes: buckets.map { $0.shape[0] }, dataParallel: d)
                let places = try bucketPlaces(chunks: buckets.map { bucket in Dictionary(bucket.chunks.map { ($0.offsets[0], [$0.sizes[0]]) },
                                                                                          uniquingKeysWith: +) },
                                              sizes: buckets.map { $0.shape[0] }, name: name, folder: folder, order: order, counts: counts,
                                              shardSizes: cuts)
                for (store, part) in targets {
                    var flats = [[Float]]()
                    for bucket in buckets.indices {
                        let key = "\(name)\(bucket).\(part)"
                        guard let tensor = checkpoint.tensors[key], tensor.shape == buckets[bucket].shape else {
                            throw .checkpoint(path: folder, reason: "holds no \(key) shaped as its exp_avg")
                        }
                        do { flats.append(try checkpoint.floats(key)) } catch { throw .checkpoint(error) }
                    }
                    for i in read where rank == 0 || shards[i] != .replicated {
                        flats[places[i].bucket].withUnsafeBufferPointer { values in
                            shards[i].place(values.baseAddress! + places[i].start, into: store.pointer(at: layout.index(of: order[i])!),
                                            fullShape: fullShapes[i], rank: rank, size: t)
                        }
                    }
                }
            }
        }
        return try distributedStep(checkpoint)
    }

    /// Each bucket's data-parallel shard size in model-parallel rank `group`'s buffer of model
    /// chunk `chunk`, whose buckets hold `sizes` elements (the padded bucket size from
    /// `per_bucket_numel` over `dataParallel`): the only places where a parameter's chunks may be
    /// cut. Without that entry (older megatron-core) only DP 1 is read.
    private static func dataParallelShards(_ checkpoint: DistributedCheckpoint, group: Int, chunk: Int, sizes: [Int], dataParallel d: Int)
        throws(TrainingError) -> [Int] {
        let entry = "\(distributedPrefix)dp_group_idx_\(group).per_bucket_numel/shard_0_1"
        guard checkpoint.hasBytes(entry) else {
            guard d == 1 else {
                throw .checkpoint(path: checkpoint.folder, reason: "no \(entry) (the padded bucket sizes), which a data-parallel size of \(d) needs")
            }
            return sizes.map { _ in Int.max }
        }
        let file: TorchFile
        do { file = try checkpoint.torchFile(ofBytes: entry) } catch { throw .checkpoint(error) }
        // [[{(param dtype, grad dtype): [padded size per bucket]}]]: a list of the model chunks' buffers.
        guard let buffers = file.root.items?.first?.items, buffers.indices.contains(chunk), let pairs = buffers[chunk].entries?.pairs,
              pairs.count == 1,
              let padded = pairs[0].value.items?.compactMap(\.int), padded.count == sizes.count,
              zip(padded, sizes).allSatisfy({ $0 >= $1 && $0 > 0 && $0 % d == 0 }) else {
            throw .checkpoint(path: file.path, reason: "per_bucket_numel holds no padded sizes of model chunk \(chunk)'s \(sizes.count) buckets "
                              + "(\(sizes)), each divisible by the data-parallel size \(d)")
        }
        return padded.map { $0 / d }
    }

    /// Where each parameter (`order`, of `counts` elements) lies in one rank's buffer, named
    /// `name<k>` for its buckets, which hold `sizes` elements saved as the chunks `chunks` (per
    /// bucket, the chunks' sizes by offset): megatron-core lays the parameters out from last to
    /// first, each at the next multiple of 64 elements, starting a new bucket (at 0) where the
    /// previous one ends (at the last parameter's end, or at the next multiple of 64 where the
    /// next parameter takes a bucket of its own). Found by following the chunks: each parameter
    /// is chunks that tile its place, cut only at multiples of its bucket's data-parallel shard
    /// size (`shardSizes`). A parameter not so tiled, or a bucket not filled to its end, is an error.
    static func bucketPlaces(chunks: [[Int: [Int]]], sizes: [Int], name buffer: String, folder: String, order: [String],
                             counts: [Int], shardSizes: [Int]) throws(TrainingError) -> [(bucket: Int, start: Int)] {
        func tiled(_ bucket: Int, _ start: Int, _ count: Int) -> Bool {
            var at = start
            while at < start + count {
                let ends = chunks[bucket][at]?.map { at + $0 } ?? []
                guard let next = ends.filter({ $0 == start + count || ($0 > at && $0 < start + count && $0 % shardSizes[bucket] == 0) }).max()
                else { return false }
                at = next
            }
            return at == start + count
        }
        var places = [(bucket: Int, start: Int)](repeating: (0, 0), count: order.count)
        var bucket = 0, end = 0
        for i in order.indices.reversed() {
            let start = (end + 63) / 64 * 64
            if tiled(bucket, start, counts[i]) {
                places[i] = (bucket, start)
            } else if end == sizes[bucket] || start == sizes[bucket], bucket + 1 < chunks.count, tiled(bucket + 1, 0, counts[i]) {
                bucket += 1
                places[i] = (bucket, 0)
            } else {
                throw .checkpoint(path: folder, reason: "\(buffer)\(bucket) has no chunks of \(counts[i]) elements at \(start) for "
                                  + "\(order[i]): its parameters are not laid out in the order this reader derives")
            }
            end = places[i].start + counts[i]
        }
        guard bucket == chunks.count - 1, end == sizes[bucket] else {
            throw .checkpoint(path: folder, reason: "\(buffer)\(bucket) holds \(sizes[bucket]) elements, its parameters end at \(end)")
        }
        return places
    }

    /// The model's parameters in megatron-core's `named_parameters` order, which the buffers
    /// follow: the keys before the layers (the first stage's), each layer's keys in turn, and the
    /// keys after (the last stage's). The metadata lists the model's keys in the order the
    /// model's sharded state dict walks them, the stacked layers' keys once (layer 0's walk).
    private static func parameterOrder(_ opened: OpenedDistributed, layout: ParameterLayout) throws(TrainingError)
        -> (head: [String], layers: [[String]], tail: [String]) {
        let config = opened.config, folder = opened.checkpoint.folder
        let modelKeys = opened.checkpoint.keys.filter { key in modelKeyPrefixes.contains(where: key.hasPrefix) }
        let layerKeys = modelKeys.filter { $0.hasPrefix("decoder.layers.") }.map { $0.dropFirst("decoder.layers.".count) }
        guard let first = modelKeys.firstIndex(where: { $0.hasPrefix("decoder.layers.") }) else {
            throw .checkpoint(path: folder, reason: "holds no decoder.layers tensors")
        }
        func names(_ keys: [String]) throws(TrainingError) -> [String] {
            var names = [String]()
            for key in keys {
                guard let name = try ourName(key, firstLayer: 0, untied: config.untieEmbeddingsAndOutputWeights, path: folder) else { continue }
                guard layout.index(of: name) != nil else { throw .checkpoint(path: folder, reason: "\(key) is not a parameter of this GPT") }
                names.append(name)
            }
            return names
        }
        let head = try names(modelKeys[..<first].filter { !$0.hasPrefix("decoder.layers.") })
        var layers = [[String]]()
        for layer in 0..<config.numLayers { layers.append(try names(layerKeys.map { "decoder.layers.\(layer).\($0)" })) }
        let tail = try names(modelKeys[first...].filter { !$0.hasPrefix("decoder.layers.") })
        let all = head + layers.joined() + tail
        guard all.count == layout.specs.count, Set(all) == Set(layout.specs.map(\.name)) else {
            throw .checkpoint(path: folder, reason: "the model keys in .metadata do not name each of the model's \(layout.specs.count) "
                              + "parameters once (\(all.count) found), so the flat buffer's order cannot be derived")
        }
        return (head, layers, tail)
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
