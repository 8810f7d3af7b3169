import ArgumentParser
import FileSupport

/// The benchmarks' memory check: a size that cannot be allocated here is refused before the
/// benchmark allocates it, with the figures, instead of failing inside the allocator.
enum BenchMemory {
    /// Throws when `bytes` (what the benchmark will allocate for `what`) exceed the memory
    /// available now.
    static func check(bytes: Double, what: String) throws {
        guard let available = SystemMemory.availableBytes(), bytes > available else { return }
        throw ValidationError("\(what) need about \(SystemMemory.describe(bytes)) but \(SystemMemory.describe(available)) "
            + "is available: choose smaller sizes")
    }
}
