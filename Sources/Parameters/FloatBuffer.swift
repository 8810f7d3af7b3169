#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Accelerator
import FileSupport

/// An owned, 64-byte aligned array of `Float`s, zero-initialized unless asked not to (one
/// allocation, freed on deinit). With `--device cuda` it is GPU managed memory (`GPU.allocate`),
/// which the kernels use on the GPU and the host can still read.
public final class FloatBuffer: @unchecked Sendable {
    /// Number of floats.
    public let count: Int
    /// Start of the storage.
    public let pointer: UnsafeMutablePointer<Float>

    /// Allocates `count` zeroed floats. When the memory cannot be had, the process stops with
    /// one line naming the size (never a trap: release builds drop preconditions); runs check
    /// their whole need up front (`GPTMemory`, `MemoryRequirement`) so this is the last resort.
    public convenience init(count: Int) { self.init(count: count, zeroed: true) }

    /// `count` floats, zeroed or not: a buffer whose every element is written before it is read
    /// (a key/value cache) skips the pass, and a large one then takes resident memory only as
    /// its pages are first written.
    public init(count: Int, zeroed: Bool) {
        self.count = count
        let (bytes, overflow) = max(1, count).multipliedReportingOverflow(by: MemoryLayout<Float>.stride)
        if count >= 0 && !overflow, let managed = GPU.allocate(bytes: bytes) {  // zeroed on the GPU
            pointer = managed.bindMemory(to: Float.self, capacity: max(1, count))
            return
        }
        var raw: UnsafeMutableRawPointer?
        if count < 0 || overflow || posix_memalign(&raw, 64, bytes) != 0 || raw == nil {
            outOfMemory(bytes: Double(max(1, count)) * Double(MemoryLayout<Float>.stride))
        }
        pointer = raw!.bindMemory(to: Float.self, capacity: max(1, count))
        if zeroed { pointer.initialize(repeating: 0, count: count) }
    }

    deinit { if !GPU.release(pointer) { free(pointer) } }

    /// Sets every element to zero.
    public func zero() {
        if let gpu = GPU.active, gpu.owns(pointer) { return gpu.zero(pointer, bytes: count * MemoryLayout<Float>.stride) }
        pointer.update(repeating: 0, count: count)
    }

    /// The contents as an array (for tests and small exports).
    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}

/// An owned array of `Int32`s (token ids and targets).
public final class Int32Buffer: @unchecked Sendable {
    /// Number of elements.
    public let count: Int
    /// Start of the storage.
    public let pointer: UnsafeMutablePointer<Int32>

    /// Allocates `count` zeroed elements (out of memory stops the process as `FloatBuffer` does).
    public init(count: Int) {
        self.count = count
        let (bytes, overflow) = max(1, count).multipliedReportingOverflow(by: MemoryLayout<Int32>.stride)
        if count >= 0 && !overflow, let managed = GPU.allocate(bytes: bytes) {  // zeroed on the GPU
            pointer = managed.bindMemory(to: Int32.self, capacity: max(1, count))
            return
        }
        guard count >= 0, !overflow, let raw = malloc(bytes) else {
            outOfMemory(bytes: Double(max(1, count)) * Double(MemoryLayout<Int32>.stride))
        }
        pointer = raw.bindMemory(to: Int32.self, capacity: max(1, count))
        pointer.initialize(repeating: 0, count: count)
    }

    deinit { if !GPU.release(pointer) { free(pointer) } }
}

/// Stops the process with one line on standard error: an allocation of `bytes` failed.
func outOfMemory(bytes: Double) -> Never {
    let available = SystemMemory.availableBytes().map { " (\(SystemMemory.describe($0)) available)" } ?? ""
    let line = "error: out of memory: cannot allocate \(SystemMemory.describe(bytes))\(available); "
        + "reduce the model, the micro-batch or the sequence length\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(1)
}
