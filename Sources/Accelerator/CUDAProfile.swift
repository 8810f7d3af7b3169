#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Per-operation totals of a run with `MEGATRON_CUDA_PROFILE=1`: calls, wall time (with the
/// default synchronous calls, each operation's whole GPU time plus its launch and wait) and host
/// bytes staged through managed memory. `GPU.profileReport` prints them, slowest first.
final class CUDAProfile: Sendable {
    struct Entry { var calls = 0, seconds = 0.0, stagedBytes = 0 }
    private let entries = Mutex<[String: Entry]>([:])

    func record(_ name: StaticString, seconds: Double, stagedBytes: Int) {
        entries.withLock { table in
            var entry = table["\(name)"] ?? Entry()
            entry.calls += 1
            entry.seconds += seconds
            entry.stagedBytes += stagedBytes
            table["\(name)"] = entry
        }
    }

    /// Forgets what was recorded so far (a benchmark's warm-up).
    func reset() { entries.withLock { $0.removeAll() } }

    /// A table, slowest operation first.
    var report: String {
        let rows = entries.withLock { $0 }.sorted { $0.value.seconds > $1.value.seconds }
        let total = rows.reduce(0) { $0 + $1.value.seconds }
        var lines = ["CUDA profile: \(rows.reduce(0) { $0 + $1.value.calls }) calls, \(format(total * 1e3)) ms",
                     "operation                   calls      ms   us/call  staged MB"]
        for (name, entry) in rows {
            lines.append(name + String(repeating: " ", count: max(1, 24 - name.count)) + pad(entry.calls, 9)
                         + pad(format(entry.seconds * 1e3), 8) + pad(format(entry.seconds * 1e6 / Double(entry.calls)), 10)
                         + pad(format(Double(entry.stagedBytes) / 1048576), 11))
        }
        return lines.joined(separator: "\n")
    }

    private func format(_ value: Double) -> String {
        let scaled = (value * 10).rounded() / 10
        return String(describing: scaled)
    }

    private func pad(_ value: Any, _ width: Int) -> String {
        let text = "\(value)"
        return String(repeating: " ", count: max(1, width - text.count)) + text
    }

    /// Seconds on a monotonic clock.
    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }
}
