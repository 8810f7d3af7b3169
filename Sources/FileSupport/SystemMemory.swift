#if canImport(Glibc)
import Glibc
#endif

/// How much memory this process can still use: the smaller of the kernel's estimate of
/// available memory (`MemAvailable`) and what the cgroup's limit leaves (cgroup v2
/// `memory.max - memory.current`, or v1 `limit_in_bytes - usage_in_bytes`).
public enum SystemMemory {
    /// Bytes available to this process; nil when nothing can be read (not Linux).
    public static func availableBytes() -> Double? {
        var available = meminfo("MemAvailable:").map { $0 * 1024 }
        let limits = [("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                      ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")]
        for (limitFile, usageFile) in limits {
            guard let limit = number(in: limitFile), let usage = number(in: usageFile), limit < 1e18 else { continue }
            available = min(available ?? .infinity, max(0, limit - usage))
            break
        }
        return available
    }

    /// This machine's physical memory in bytes (what no allocation of one process can exceed).
    public static func physicalBytes() -> Double {
        Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// A byte count for messages: `12.3 GiB`, `512.0 MiB`.
    public static func describe(_ bytes: Double) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var value = bytes, unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        if value >= 1e4 { return "\(Int(value)) \(units[unit])" }
        let rounded = (value * 10).rounded() / 10
        return "\(rounded) \(units[unit])"
    }

    /// The first number in `path` (nil for `max`, a missing file or no number).
    private static func number(in path: String) -> Double? {
        guard let text = read(path) else { return nil }
        let digits = text.prefix { $0.isNumber }
        return digits.isEmpty ? nil : Double(digits)
    }

    /// The kB figure of a `/proc/meminfo` line starting with `key`.
    private static func meminfo(_ key: String) -> Double? {
        guard let text = read("/proc/meminfo") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(key) {
            return Double(line.dropFirst(key.count).filter(\.isNumber))
        }
        return nil
    }

    private static func read(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
