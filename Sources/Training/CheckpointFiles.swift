#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import FileSupport
import Models
import Parameters

/// One iteration's checkpoint directory while it is written: every rank's files go into
/// `iter_N.tmp` (one name all ranks agree on; two jobs must not save into one directory), which
/// `commit` renames to `iter_N` before the tracker file is replaced, so a crash while saving leaves
/// the previous checkpoint and tracker intact. Saving an iteration that already exists moves the
/// old `iter_N` aside first: a crash in that instant leaves it as `iter_N.old`.
struct CheckpointDirectory {
    let root: String
    let iteration: Int

    var final: String { root + "/" + Checkpoint.directoryName(iteration: iteration) }
    var temporary: String { final + ".tmp" }

    /// Removes a stale temporary directory and creates an empty one.
    func prepare() throws(TrainingError) {
        let files = FileManager.default
        do {
            try? files.removeItem(atPath: temporary)
            try files.createDirectory(atPath: temporary, withIntermediateDirectories: true)
        } catch {
            throw .checkpoint(path: root, reason: "cannot create \(temporary): \(error)")
        }
    }

    /// The (created) folder `name` of a model-parallel rank inside the temporary directory.
    func rankDirectory(_ name: String) throws(TrainingError) -> String {
        let path = temporary + "/" + name
        do { try Directory.create(path) } catch { throw .checkpoint(path: path, reason: "cannot create it: \(error)") }
        return path
    }

    /// Moves the finished directory into place and points the tracker at it.
    func commit() throws(TrainingError) {
        let files = FileManager.default
        do {
            if files.fileExists(atPath: final) {
                let old = final + ".old"
                try? files.removeItem(atPath: old)
                try files.moveItem(atPath: final, toPath: old)
                try files.moveItem(atPath: temporary, toPath: final)
                try files.removeItem(atPath: old)
            } else {
                try files.moveItem(atPath: temporary, toPath: final)
            }
            try AtomicFile.write(Array("\(iteration)\n".utf8), to: root + "/" + Checkpoint.trackerName)
        } catch {
            throw .checkpoint(path: final, reason: "cannot move the checkpoint into place: \(error)")
        }
    }
}

/// The files inside a model-parallel rank's folder (`mp_rank_TT` or `mp_rank_TT_PPP`): `model_optim_rng.safetensors` (weights, and
/// the Adam moments per tensor unless the distributed optimizer kept them) and, with the
/// distributed optimizer, `distrib_optim_dp_RR.safetensors` (each data-parallel rank's flat slice
/// of both moments).
enum CheckpointFiles {
    static let modelFile = "model_optim_rng.safetensors"

    static func shardFile(dataRank: Int) -> String {
        "distrib_optim_dp_" + (dataRank < 10 ? "0" : "") + String(dataRank) + ".safetensors"
    }

    /// Writes weights and (when given) per-tensor moments of one model-parallel rank.
    static func writeModel(to directory: String, params: ParameterStore,
                           moments: (m: ParameterStore, v: ParameterStore)?, metadata: [String: String]) throws(TrainingError) {
        var stores = [("", params)]
        if let moments { stores += [("optimizer.exp_avg.", moments.m), ("optimizer.exp_avg_sq.", moments.v)] }
        var tensors = [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)]()
        for (prefix, store) in stores {
            for (index, spec) in store.layout.specs.enumerated() {
                tensors.append((prefix + spec.name, spec.shape, UnsafeBufferPointer(start: store.pointer(at: index), count: spec.count)))
            }
        }
        let path = directory + "/" + modelFile
        do { try SafeTensorsFile.write(tensors, metadata: metadata, to: path) } catch { throw .checkpoint(path: path, reason: "\(error)") }
    }

    /// Writes one data-parallel rank's slice `range` of the flat moments (`m`, `v` hold the slice).
    static func writeShard(to directory: String, dataRank: Int, dataParallel: Int, range: Range<Int>,
                           m: UnsafePointer<Float>, v: UnsafePointer<Float>) throws(TrainingError) {
        let path = directory + "/" + shardFile(dataRank: dataRank)
        let metadata = ["shard_start": String(range.lowerBound), "shard_end": String(range.upperBound),
                        "data_parallel_rank": String(dataRank), "data_parallel_size": String(dataParallel)]
        let tensors = [("exp_avg", [range.count], UnsafeBufferPointer(start: m, count: range.count)),
                       ("exp_avg_sq", [range.count], UnsafeBufferPointer(start: v, count: range.count))]
        do { try SafeTensorsFile.write(tensors, metadata: metadata, to: path) } catch { throw .checkpoint(path: path, reason: "\(error)") }
    }

    /// Opens a rank folder's model file; a missing folder or file is named as such.
    static func openModel(in directory: String) throws(TrainingError) -> (file: SafeTensorsFile, path: String) {
        let path = directory + "/" + modelFile
        try requireExists(path, what: "the rank file")
        do { return (try SafeTensorsFile(path: path), path) } catch { throw .checkpoint(error) }
    }

    /// Throws `what is missing` naming `path` (or its missing folder) when there is no such file.
    static func requireExists(_ path: String, what: String) throws(TrainingError) {
        let files = FileManager.default
        guard !files.fileExists(atPath: path) else { return }
        let folder = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
        if !folder.isEmpty && !files.fileExists(atPath: folder) {
            throw .checkpoint(path: path, reason: "\(what) is missing: its folder \(folder) does not exist")
        }
        throw .checkpoint(path: path, reason: "\(what) is missing")
    }

    /// Throws naming `path` and the first tensor of `store` that holds a NaN or infinite value
    /// (weights read from a checkpoint written before saves were checked, or edited since).
    static func requireFinite(_ store: ParameterStore, path: String) throws(TrainingError) {
        guard let bad = store.firstNonFinite() else { return }
        throw .checkpoint(path: path, reason: "tensor \(bad.name) holds \(bad.value) (element \(bad.index)); "
            + "the run that saved it had diverged, or the file was damaged: load an earlier checkpoint")
    }

    /// Fills `store` from the tensors named `prefix + spec name`, checking each size.
    static func read(_ file: SafeTensorsFile, path: String, prefix: String, into store: ParameterStore) throws(TrainingError) {
        for (index, spec) in store.layout.specs.enumerated() {
            do {
                let count = try file.shape(prefix + spec.name).reduce(1, *)
                guard count == spec.count else {
                    throw TrainingError.checkpoint(path: path, reason: "\(prefix + spec.name) has \(count) values, expected \(spec.count)")
                }
                try file.read(prefix + spec.name, into: store.pointer(at: index), count: count)
            } catch let error as TrainingError {
                throw error
            } catch {
                throw .checkpoint(path: path, reason: "\(error)")
            }
        }
    }

    /// Reads both Adam moments of a model-parallel rank into `m` and `v` (laid out as the rank's
    /// parameters), whichever way they were saved: per tensor in the model file, or as the
    /// data-parallel ranks' flat slices.
    static func readMoments(in directory: String, model file: SafeTensorsFile, path: String,
                            into m: ParameterStore, _ v: ParameterStore) throws(TrainingError) {
        let layout = m.layout
        guard file.metadata["distributed_optimizer"] == "true" else {
            try read(file, path: path, prefix: "optimizer.exp_avg.", into: m)
            try read(file, path: path, prefix: "optimizer.exp_avg_sq.", into: v)
            return
        }
        guard let text = file.metadata["data_parallel_size"], let dataParallel = Int(text), dataParallel > 0 else {
            throw .checkpoint(path: path, reason: "metadata data_parallel_size is missing or not a positive number")
        }
        var covered = 0
        for rank in 0..<dataParallel {
            let shardPath = directory + "/" + shardFile(dataRank: rank)
            try requireExists(shardPath, what: "the distributed optimizer's shard of data-parallel rank \(rank)")
            let shard: SafeTensorsFile
            do { shard = try SafeTensorsFile(path: shardPath) } catch { throw .checkpoint(error) }
            guard let start = shard.metadata["shard_start"].flatMap({ Int($0) }),
                  let end = shard.metadata["shard_end"].flatMap({ Int($0) }), start == covered, end >= start, end <= layout.totalCount else {
                throw .checkpoint(path: shardPath, reason: "its shard_start/shard_end do not continue the slice that ends at \(covered)")
            }
            for (name, store) in [("exp_avg", m), ("exp_avg_sq", v)] {
                let values: [Float]
                do { values = try shard.floats(name) } catch { throw .checkpoint(error) }
                guard values.count == end - start else {
                    throw .checkpoint(path: shardPath, reason: "\(name) has \(values.count) values, expected \(end - start)")
                }
                (store.buffer.pointer + start).update(from: values, count: values.count)
            }
            covered = end
        }
        guard covered == layout.totalCount else {
            throw .checkpoint(path: directory, reason: "the optimizer shards cover \(covered) of \(layout.totalCount) values")
        }
    }
}
