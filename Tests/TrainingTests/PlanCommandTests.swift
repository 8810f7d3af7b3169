import Foundation
import Testing

/// `megatron plan` as a user runs it: the published-runs table, the software flags, bad layouts.
@Suite struct PlanCommandTests {
    /// Runs `megatron plan arguments` and returns its status and standard output.
    static func plan(_ arguments: [String]) throws -> (status: Int32, stdout: String) {
        let result = try CommandLineErrorTests.megatron(["plan"] + arguments)
        return (result.status, result.stdout)
    }

    @Test func thePublishedRunsTableHasEveryRowAndItsErrors() throws {
        let result = try Self.plan(["--published-runs"])
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n").filter { $0.hasPrefix("| ") && !$0.hasPrefix("| run ") }
        #expect(lines.count == 37)
        #expect(lines.allSatisfy { $0.split(separator: "|").count == 9 && $0.contains("%") })
        #expect(result.stdout.contains("| BLOOM 176B | TP 4 PP 12 DP 8, b 2, B 2048, full, dist-opt, bf16"))
        // The summary keeps each worst row's sign: MT-NLG on 420 nodes is predicted fast (more
        // TFLOP/s), Megatron-LM v1.0's baseline slow (a longer iteration).
        #expect(result.stdout.contains("worst error +") && result.stdout.contains("% in TFLOP/s per GPU, +"))
        let json = try Self.plan(["--published-runs", "--json"])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(rows.count == 37)
        let bloom = try #require(rows.first { $0["name"] as? String == "BLOOM 176B" })
        #expect(bloom["published_iteration_time_s"] as? Double == 104.7 && bloom["gpus"] as? Int == 384)
    }

    @Test func softwareFlagsChangeThePrediction() throws {
        let base = ["--model", "gpt3-175b", "--tensor-model-parallel-size", "8", "--pipeline-model-parallel-size", "8",
                    "--global-batch-size", "64", "--bf16", "--recompute-granularity", "full", "--nodes", "8", "--json"]
        func seconds(_ extra: [String]) throws -> Double {
            let result = try Self.plan(base + extra)
            #expect(result.status == 0)
            let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            return try #require(object?["iteration_time_s"] as? Double)
        }
        let fused = try seconds([])
        #expect(try seconds(["--no-masked-softmax-fusion", "--no-bias-gelu-fusion"]) > fused)
        #expect(try seconds(["--no-scatter-gather-tensors-in-pipeline"]) > fused)
        #expect(try seconds(["--decoder-first-pipeline-num-layers", "9", "--decoder-last-pipeline-num-layers", "9"]) > fused)
        // The text names the software the prediction assumes, and uneven stages' layers.
        let text = try Self.plan(Array(base.dropLast()) + ["--no-bias-gelu-fusion", "--decoder-last-pipeline-num-layers", "5"])
        #expect(text.stdout.contains("software     --no-bias-gelu-fusion\n"), "\(text.stdout)")
        #expect(text.stdout.contains("layers per stage: first 13, middle 13, last 5"), "\(text.stdout)")
        #expect(try Self.plan(Array(base.dropLast())).stdout.contains("software     Megatron-LM's defaults"))
    }
}
