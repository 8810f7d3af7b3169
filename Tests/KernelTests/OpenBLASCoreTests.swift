import Foundation
@testable import Kernels
import Testing

/// `megatron` names OpenBLAS's kernels (`OPENBLAS_CORETYPE`) only where OpenBLAS fell back to its
/// pre-AVX ones on a CPU with AVX-512 or AVX2.
@Suite struct OpenBLASCoreTests {
    static let avx512: Set<String> = ["fma", "avx2", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]

    @Test func aFallbackOnAModernCPUIsCorrected() {
        #expect(OpenBLASCore.correction(loaded: "Prescott", flags: Self.avx512.union(["avx512_bf16"])) == "Cooperlake")
        #expect(OpenBLASCore.correction(loaded: "Prescott", flags: Self.avx512) == "SkylakeX")
        #expect(OpenBLASCore.correction(loaded: "Nehalem", flags: ["sse4_2", "avx", "avx2", "fma"]) == "Haswell")
        #expect(OpenBLASCore.correction(loaded: "Prescott", flags: ["avx2", "avx512f"]) == nil,
                "avx512f without fma or the other AVX-512 subsets SkylakeX's kernels use")
    }

    @Test func aChoiceThatFitsTheCPUIsKept() {
        for core in ["Cooperlake", "SkylakeX", "Haswell", "Zen", "Sandybridge"] {
            #expect(OpenBLASCore.correction(loaded: core, flags: Self.avx512) == nil, "\(core)")
        }
        #expect(OpenBLASCore.correction(loaded: "Prescott", flags: ["sse3", "ssse3", "sse4_2"]) == nil, "a CPU without AVX2")
    }

    @Test func cpuInfoReadsTheFirstProcessorsNameAndFlags() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cpuinfo-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try """
        processor\t: 0
        vendor_id\t: GenuineIntel
        model name\t: Intel(R) Xeon(R)   Processor
        flags\t\t: fpu sse3 avx2 fma avx512f

        processor\t: 1
        model name\t: Another CPU
        flags\t\t: fpu

        """.write(toFile: path, atomically: true, encoding: .utf8)
        let info = CPUInfo(contentsOf: path)
        #expect(info.modelName == "Intel(R) Xeon(R) Processor")
        #expect(info.flags == ["fpu", "sse3", "avx2", "fma", "avx512f"])
        #expect(CPUInfo(contentsOf: path + ".missing").flags.isEmpty)
    }
}
