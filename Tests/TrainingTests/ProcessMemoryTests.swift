@testable import Measurement
import Testing

/// The peak memory `train` reports: a measurement's own buffers (the GEMM peak's operands) do
/// not count, what came before them does.
@Suite struct ProcessMemoryTests {
    static func touch(_ bytes: Int) {
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: bytes)
        buffer.initialize(repeating: 1, count: bytes)  // resident, page by page
        buffer.deallocate()
    }

    @Test func aMeasurementsOwnBuffersAreNotThePeak() {
        guard ProcessMemory.resetPeak() else { return }  // a kernel without clear_refs: nothing to check
        let mib = 1 << 20
        Self.touch(256 * mib)
        let before = ProcessMemory.peakResidentBytes()
        #expect(before >= ProcessMemory.residentBytes() + 200 * mib, "the freed buffer stood as the peak")
        ProcessMemory.excludingFromPeak { Self.touch(768 * mib) }
        let after = ProcessMemory.peakResidentBytes()
        #expect(after >= before, "the peak before the measurement is kept")
        #expect(after < before + 256 * mib, "the measurement's 768 MiB are not the peak")
    }
}
