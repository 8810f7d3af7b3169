import Measurement
import Testing

/// `megatron cuda-check`'s cases run on a machine without a GPU too: each one's CPU run is
/// repeated (what the comparison does there) and the two agree exactly, so a case that crashes,
/// reads uninitialized memory or is not deterministic on the CPU shows up here, not first on a
/// lent GPU.
@Suite struct KernelComparisonTests {
    @Test func everyCaseRunsOnTheCPU() {
        let results = KernelComparison.all(seed: 3).map { $0.run() }
        #expect(results.contains { $0.name == "Embedding.forward (bf16 tables)" })
        for result in results { #expect(result.error == 0, "\(result.name) (\(result.shape)): \(result.error)") }
    }
}
