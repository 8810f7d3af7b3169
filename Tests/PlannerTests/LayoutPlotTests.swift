import Models
import Planner
import Testing

/// `plan --search --plot`: the SVG draws every layout it is given, and what each bar carries adds
/// up to the layout's predicted time and memory.
@Suite struct LayoutPlotTests {
    @Test func theBarsAddUpToThePrediction() throws {
        let search = LayoutSearch(config: ModelPreset.gpt3_175b.config, cluster: { var c = ClusterSpec.presets["dgx-a100-80gb"]!; c.nodes = 16; return c }(),
                                  globalBatchSize: 256, precision: .bf16, distributedOptimizer: nil)
        let best = Array(search.ranked.prefix(4))
        #expect(best.count == 4)
        let svg = LayoutPlot.svg(best, title: "175B <test> & co", deviceMemory: 80 * 1024 * 1024 * 1024)
        #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n"))
        #expect(svg.contains("175B &lt;test&gt; &amp; co"))
        let groups = svg.split(separator: "<g class=\"layout\"").dropFirst()
        #expect(groups.count == best.count)
        for (group, candidate) in zip(groups, best) {
            func numbers(_ attribute: String) -> [Double] {
                group.split(separator: "\(attribute)=\"").dropFirst().map { Double($0.prefix { $0 != "\"" })! }
            }
            let e = candidate.estimate
            #expect(numbers("data-iteration-s") == [e.iterationSeconds])
            #expect(abs(numbers("data-s").reduce(0, +) - e.iterationSeconds) <= 1e-9 * e.iterationSeconds)
            #expect(abs(numbers("data-bytes").reduce(0, +) - e.memoryPerDeviceBytes) <= 1e-9 * e.memoryPerDeviceBytes)
        }
    }
}
