#if canImport(Glibc)
import Glibc
#endif

/// Memory figures of this process.
public enum ProcessMemory {
    /// Peak resident set size (VmHWM from /proc/self/status), in bytes; 0 when unavailable.
    public static func peakResidentBytes() -> Int { status("VmHWM:") }

    /// Resident set size now (VmRSS), in bytes; 0 when unavailable.
    public static func residentBytes() -> Int { status("VmRSS:") }

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
