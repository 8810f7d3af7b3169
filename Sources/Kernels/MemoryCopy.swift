import Accelerator

/// Copies between buffers the kernels use: on a GPU in order with its queued work (a host copy
/// could overwrite tokens a queued kernel still reads, or read an output not yet written).
public enum MemoryCopy {
    /// `destination[0..<count] = source[0..<count]`.
    public static func copy<T>(to destination: UnsafeMutablePointer<T>, from source: UnsafePointer<T>, count: Int) {
        if let gpu = GPU.active {
            return gpu.copy(to: destination, from: source, bytes: count * MemoryLayout<T>.stride)
        }
        destination.update(from: source, count: count)
    }

    /// `destination[0..<count] = 0`.
    public static func zero(_ destination: UnsafeMutablePointer<Float>, count: Int) {
        if let gpu = GPU.active, gpu.owns(destination) {
            return gpu.zero(destination, bytes: count * MemoryLayout<Float>.stride)
        }
        destination.update(repeating: 0, count: count)
    }
}
