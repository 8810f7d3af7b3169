import Synchronization

/// The address ranges of the managed (unified) allocations the CUDA backend made: a kernel given
/// a pointer outside them (a Swift array, a stack buffer) copies through managed staging memory
/// instead (`Staging`), so every pointer the Kernels module is handed works on the GPU.
final class ManagedMemory: Sendable {
    private struct Range { let start: UInt, end: UInt }
    /// Sorted by start; ranges never overlap.
    private let ranges = Mutex<[Range]>([])

    func insert(_ pointer: UnsafeMutableRawPointer, bytes: Int) {
        let range = Range(start: UInt(bitPattern: pointer), end: UInt(bitPattern: pointer) + UInt(max(1, bytes)))
        ranges.withLock { list in list.insert(range, at: Self.firstIndex(in: list, after: range.start)) }
    }

    /// Removes the allocation starting at `pointer`; false when it is not one of ours.
    func remove(_ pointer: UnsafeMutableRawPointer) -> Bool {
        let start = UInt(bitPattern: pointer)
        return ranges.withLock { list in
            let index = Self.firstIndex(in: list, after: start)
            guard index < list.count, list[index].start == start else { return false }
            list.remove(at: index)
            return true
        }
    }

    /// Whether `bytes` bytes from `pointer` lie inside one managed allocation.
    func contains(_ pointer: UnsafeRawPointer, bytes: Int) -> Bool {
        let start = UInt(bitPattern: pointer), end = start + UInt(max(0, bytes))
        return ranges.withLock { list in
            let index = Self.firstIndex(in: list, after: start + 1)  // first range starting past `start`
            guard index > 0 else { return false }
            let range = list[index - 1]
            return range.start <= start && end <= range.end
        }
    }

    /// Index of the first range whose start is at least `address` (binary search).
    private static func firstIndex(in list: [Range], after address: UInt) -> Int {
        var low = 0, high = list.count
        while low < high {
            let middle = (low + high) / 2
            if list[middle].start < address { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
