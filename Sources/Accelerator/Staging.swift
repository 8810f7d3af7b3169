/// Makes a kernel call's pointers usable on the GPU: a pointer into managed memory passes as it
/// is; any other (host memory the CUDA backend did not allocate) is copied into a managed
/// temporary, and outputs are copied back when the scope finishes. Correct for every caller;
/// the hot buffers of a training step are all managed, so they never stage.
///
///     let staging = Staging(gpu, "kernel")
///     defer { staging.finish() }
///     gpu.call(staging.output(out, count), staging.input(inp, count))
final class Staging {
    private let gpu: CUDAAccelerator
    private let name: StaticString
    private let start: Double
    private var stagedBytes = 0
    private var temporaries: [UnsafeMutableRawPointer] = []
    private var writeBacks: [(host: UnsafeMutableRawPointer, device: UnsafeRawPointer, bytes: Int)] = []

    /// Staging for operation `name` (a row of the profile, when one is kept).
    init(_ gpu: CUDAAccelerator, _ name: StaticString) {
        self.gpu = gpu
        self.name = name
        start = gpu.profile == nil ? 0 : CUDAProfile.now()
    }

    /// `pointer` (`count` elements read by the kernel), usable on the GPU.
    func input<T>(_ pointer: UnsafePointer<T>?, _ count: Int) -> UnsafePointer<T>? {
        guard let pointer, count > 0, let copy = hostCopy(of: pointer, bytes: count * MemoryLayout<T>.stride) else {
            return pointer
        }
        return UnsafePointer(copy.assumingMemoryBound(to: T.self))
    }

    /// `pointer` (`count` elements the kernel writes and may read), usable on the GPU; copied
    /// back by `finish`.
    func output<T>(_ pointer: UnsafeMutablePointer<T>?, _ count: Int) -> UnsafeMutablePointer<T>? {
        let bytes = count * MemoryLayout<T>.stride
        guard let pointer, count > 0, let copy = hostCopy(of: pointer, bytes: bytes) else { return pointer }
        writeBacks.append((UnsafeMutableRawPointer(pointer), UnsafeRawPointer(copy), bytes))
        return copy.assumingMemoryBound(to: T.self)
    }

    /// A managed copy of `bytes` at `pointer`, or nil when `pointer` is managed memory already.
    private func hostCopy(of pointer: UnsafeRawPointer, bytes: Int) -> UnsafeMutableRawPointer? {
        if gpu.memory.contains(pointer, bytes: bytes) { return nil }
        let copy = temporary(bytes)
        gpu.copy(to: copy, from: pointer, bytes: bytes)
        stagedBytes += bytes
        return copy
    }

    /// Copies the outputs back, frees the temporaries and adds the call to the profile.
    func finish() {
        for item in writeBacks { gpu.copy(to: item.host, from: item.device, bytes: item.bytes) }
        for pointer in temporaries { gpu.release(pointer) }
        writeBacks.removeAll()
        temporaries.removeAll()
        gpu.profile?.record(name, seconds: CUDAProfile.now() - start, stagedBytes: stagedBytes)
    }

    private func temporary(_ bytes: Int) -> UnsafeMutableRawPointer {
        let pointer = gpu.allocate(bytes: bytes)
        temporaries.append(pointer)
        return pointer
    }
}
