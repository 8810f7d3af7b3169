import Datasets
import Testing

/// Python's `random.Random(seed).sample`, which lm-eval's few-shot sampler uses: values printed by
/// CPython 3.11 (`[random.Random(s).sample(range(n), k) for ...]`).
@Suite struct PythonRandomTests {
    @Test(arguments: [
        (1234, 10, 3, [7, 1, 0]),
        (1234, 100, 5, [99, 56, 14, 0, 11]),
        (0, 7, 7, [6, 3, 5, 0, 1, 2, 4]),
        (42, 1000, 8, [654, 114, 25, 759, 281, 250, 228, 142]),
        (4_294_967_297, 50, 4, [14, 32, 26, 5]),
    ])
    func sampleMatchesCPython(seed: Int, population: Int, count: Int, expected: [Int]) {
        var random = PythonRandom(seed: seed)
        #expect(random.sample(Array(0..<population), count: count) == expected)
    }

    /// Successive samples continue one stream, as lm-eval draws each document's examples in turn.
    @Test func successiveSamplesContinueTheStream() {
        var random = PythonRandom(seed: 1234)
        let draws = (0..<3).map { _ in random.sample(Array(0..<20), count: 2) }
        #expect(draws == [[14, 3], [0, 2], [18, 1]])
    }
}
