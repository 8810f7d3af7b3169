#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An owned, 64-byte aligned, zero-initialized array of `Float`s (one allocation, freed on deinit).
public final class FloatBuffer: @unchecked Sendable {
    /// Number of floats.
    public let count: Int
    /// Start of the storage.
    public let pointer: UnsafeMutablePointer<Float>

    /// Allocates `count` zeroed floats.
    public init(count: Int) {
        self.count = count
        var raw: UnsafeMutableRawPointer?
        let status = posix_memalign(&raw, 64, max(1, count) * MemoryLayout<Float>.stride)
        precondition(status == 0 && raw != nil, "cannot allocate \(count) floats")
        pointer = raw!.bindMemory(to: Float.self, capacity: max(1, count))
        pointer.initialize(repeating: 0, count: count)
    }

    deinit { free(pointer) }

    /// Sets every element to zero.
    public func zero() { pointer.update(repeating: 0, count: count) }

    /// The contents as an array (for tests and small exports).
    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}

/// An owned array of `Int32`s (token ids and targets).
public final class Int32Buffer: @unchecked Sendable {
    /// Number of elements.
    public let count: Int
    /// Start of the storage.
    public let pointer: UnsafeMutablePointer<Int32>

    /// Allocates `count` zeroed elements.
    public init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(1, count))
        pointer.initialize(repeating: 0, count: count)
    }

    deinit { pointer.deallocate() }
}
