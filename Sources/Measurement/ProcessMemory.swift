#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Memory figures of this process.
public enum ProcessMemory {
    /// Peak resident set size (VmHWM from /proc/self/status), in bytes; 0 when unavailable. A
    /// peak reached inside `excludingFromPeak` does not count.
    public static func peakResidentBytes() -> Int { max(status("VmHWM:"), peakBefore.load(ordering: .relaxed)) }

    /// The peak before the last excluded measurement (what `peakResidentBytes` keeps as a floor).
    private static let peakBefore = Atomic<Int>(0)

    /// Runs `body` (a measurement's own buffers: `GEMMPeak`'s operands before training) and then starts the kernel's peak again from the resident size, keeping the
    /// peak before `body` as a floor: what `body` allocated and freed is not the run's peak.
    /// Where the peak cannot be reset, it counts as before.
    public static func excludingFromPeak<T>(_ body: () throws -> T) rethrows -> T {
        let before = peakResidentBytes()
        let result = try body()
        if resetPeak() { peakBefore.store(before, ordering: .relaxed) }
        return result
    }

    /// Resident set size now (VmRSS), in bytes; 0 when unavailable.
    public static func residentBytes() -> Int { status("VmRSS:") }

    /// Starts the kernel's peak (VmHWM) again from the resident size now: Linux 4.0+ (`5`
    /// written to /proc/self/clear_refs); false where it is not allowed.
    static func resetPeak() -> Bool {
        let file = open("/proc/self/clear_refs", O_WRONLY)
        guard file >= 0 else { return false }
        defer { close(file) }
        return write(file, "5", 1) == 1
    }

    /// A `kB` figure of /proc/self/status, in bytes.
    private static func status(_ key: String) -> Int {
        guard let file = fopen("/proc/self/status", "r") else { return 0 }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if text.hasPrefix(key) {
                let digits = text.filter(\.isNumber)
                return (Int(digits) ?? 0) * 1024  // reported in kB
            }
        }
        return 0
    }
}
