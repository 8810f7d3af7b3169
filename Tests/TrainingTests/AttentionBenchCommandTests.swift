import FileSupport
import Foundation
import Testing

/// `megatron bench attention` times the attention core of a configuration in fp32 and bf16.
@Suite struct AttentionBenchCommandTests {
    /// Config S's shape (8 x 4 heads, seq 256, head dim 64); one fp32 and one bf16 row, each with
    /// positive times and rates.
    @Test func reportsBothPrecisionsAtTheConfigurationsShape() throws {
        let result = try CommandLineErrorTests.megatron(["bench", "attention", "--config", "S", "--repeats", "1", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONValue.parse(result.stdout)
        #expect(report["batch"] == .number(8) && report["heads"] == .number(4))
        #expect(report["seqLength"] == .number(256) && report["headDim"] == .number(64))
        guard case let .array(rows)? = report["results"] else {
            Issue.record("no results in \(result.stdout)")
            return
        }
        #expect(rows.map { $0["precision"] } == [.string("fp32"), .string("bf16")])
        for row in rows {
            for key in ["forwardMilliseconds", "backwardMilliseconds", "forwardGFLOPs", "backwardGFLOPs"] {
                guard case let .number(value)? = row[key] else {
                    Issue.record("no \(key) in \(result.stdout)")
                    continue
                }
                #expect(value > 0, "\(key)")
            }
        }
    }

    @Test func rejectsNoRepeats() throws {
        let result = try CommandLineErrorTests.megatron(["bench", "attention", "--repeats", "0"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("--repeats must be at least 1, got 0"))
    }
}
