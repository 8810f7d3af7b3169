#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Accelerator

/// Reusable 64-byte aligned scratch for kernels that need a temporary buffer per call (the
/// emulated bf16 GEMM's widened operands, oneDNN's scratchpad; with a GPU active, GPU memory:
/// the bf16 embedding tables widened there): a block freed by one call is
/// taken by the next instead of allocating and faulting in fresh pages every time. Safe from
/// several threads (rank threads multiply at the same time, each with its own block).
public enum ScratchPool {
    private struct Block: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
        let bytes: Int
    }

    /// Idle blocks, smallest first.
    private static let idle = Mutex<[Block]>([])
    /// Bytes of idle blocks the pool keeps at most (a block that would exceed it is freed; the
    /// memory check counts this much per process on top of the model's own scratch).
    public static let idleByteLimit = 64 << 20
    /// The same with a GPU active (its memory, not the host's): enough to keep the bf16 word
    /// embedding's widened table of a large vocabulary between calls.
    static let gpuIdleByteLimit = 1 << 30

    /// Calls `body` with at least `bytes` bytes of scratch (contents undefined), valid until it returns.
    public static func withBytes<R>(_ bytes: Int, _ body: (UnsafeMutableRawPointer) throws -> R) rethrows -> R {
        let block = take(max(bytes, 1))
        defer { give(block) }
        return try body(block.pointer)
    }

    private static func take(_ bytes: Int) -> Block {
        // With a GPU active, only its (managed) memory: a host block left by `GPU.withCPU`'s
        // reference runs cannot be handed to a GPU kernel, and is freed.
        let gpu = GPU.active
        let (found, hostBlocks) = idle.withLock { blocks -> (Block?, [Block]) in
            var host = [Block]()
            if let gpu {
                host = blocks.filter { !gpu.owns($0.pointer) }
                blocks.removeAll { !gpu.owns($0.pointer) }
            }
            guard let index = blocks.firstIndex(where: { $0.bytes >= bytes }) else { return (nil, host) }
            return (blocks.remove(at: index), host)
        }
        for block in hostBlocks { free(block.pointer) }
        if let found { return found }
        if let managed = GPU.allocate(bytes: bytes) { return Block(pointer: managed, bytes: bytes) }  // --device cuda
        var pointer: UnsafeMutableRawPointer?
        guard posix_memalign(&pointer, 64, bytes) == 0, let pointer else {
            fatalError("ScratchPool: cannot allocate \(bytes) bytes of scratch")
        }
        return Block(pointer: pointer, bytes: bytes)
    }

    private static func give(_ block: Block) {
        let kept = idle.withLock { blocks -> Bool in
            let limit = GPU.active == nil ? idleByteLimit : gpuIdleByteLimit
            guard blocks.reduce(block.bytes, { $0 + $1.bytes }) <= limit else { return false }
            blocks.insert(block, at: blocks.firstIndex { $0.bytes >= block.bytes } ?? blocks.count)
            return true
        }
        if !kept && !GPU.release(block.pointer) { free(block.pointer) }
    }
}
