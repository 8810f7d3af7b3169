@testable import Dashboard
import FileSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// What the page shows: plots whose data attributes equal the file's values, the layout grid,
/// settings that differ between runs, warnings; and what the server answers and refuses.
@Suite struct DashboardPageTests {
    static func run(_ lines: [String], name: String = "run") throws -> RunMetrics {
        let path = try RunMetricsTests.temporaryFile(lines.joined(separator: "\n") + "\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try MetricsFileReader(path: path, name: name).refresh()
    }

    /// The value of attribute `name` in the element that starts with `prefix`.
    static func attribute(_ name: String, of prefix: String, in html: String) -> String? {
        guard let start = html.range(of: prefix) else { return nil }
        let element = html[start.lowerBound...].prefix { $0 != ">" }
        guard let key = element.range(of: " \(name)=\"") else { return nil }
        return String(element[key.upperBound...].prefix { $0 != "\"" })
    }

    @Test func everyPlotCarriesItsPointCountAndExactLastValue() throws {
        let lr = 0.00012345678901234567, loss = 7.123456789012345
        let run = try Self.run([RunMetricsTests.header, #"{"iteration":1,"lm_loss":8.0,"lr":0.0001,"mfu":41.5}"#,
                                #"{"iteration":2,"lm_loss":\#(loss),"lr":\#(lr),"mfu":42.25}"#,
                                #"{"iteration":2,"validation_loss":7.5,"validation_ppl":1808.04}"#])
        let html = DashboardPage.panels([run], status: "training")
        #expect(Self.attribute("data-points", of: "<svg class=\"plot\" data-plot=\"loss\"", in: html) == "2")
        #expect(Self.attribute("data-last", of: "<svg class=\"plot\" data-plot=\"loss\"", in: html).flatMap(Double.init) == loss)
        #expect(Self.attribute("data-last", of: "<svg class=\"plot\" data-plot=\"learning-rate\"", in: html).flatMap(Double.init) == lr)
        #expect(Self.attribute("data-last", of: "<svg class=\"plot\" data-plot=\"perplexity\"", in: html) == "1808.04",
                "perplexity's first series is the validation's")
        #expect(Self.attribute("data-points", of: "<svg class=\"plot\" data-plot=\"tokens\"", in: html) == "0")
        // Before the first validation the perplexity plot's first series (the validations') is empty.
        let early = try Self.run([RunMetricsTests.header, #"{"iteration":1,"lm_loss":8.0}"#])
        let earlyHTML = DashboardPage.panels([early], status: "training")
        #expect(Self.attribute("data-points", of: "<svg class=\"plot\" data-plot=\"perplexity\"", in: earlyHTML) == "0")
        #expect(html.contains("no data yet"))
        for metric in DashboardMetric.all { #expect(html.contains("data-plot=\"\(metric.id)\"")) }
        #expect(html.contains("data-tp=\"1\" data-pp=\"2\" data-dp=\"1\""), "the layout grid")
        #expect(html.contains("layers 2-3"))
    }

    @Test func malformedLinesShowAsAWarningBesideTheGoodOnes() throws {
        let run = try Self.run([#"{"iteration":1,"lm_loss":8.0}"#, "garbage", #"{"iteration":2,"lm_loss":7.0}"#])
        let html = DashboardPage.panels([run], status: "")
        #expect(html.contains("class=\"warning\" data-warnings=\"1\""))
        #expect(html.contains("line 2: not JSON"))
        #expect(Self.attribute("data-points", of: "<svg class=\"plot\" data-plot=\"loss\"", in: html) == "2")
    }

    @Test func runsSideBySideNameTheSettingsThatDiffer() throws {
        let a = try Self.run([#"{"record":"header","settings":{"lr":0.001,"num-layers":2,"bf16":true}}"#], name: "a")
        let b = try Self.run([#"{"record":"header","settings":{"lr":0.0003,"num-layers":2}}"#], name: "b")
        let html = DashboardPage.panels([a, b], status: "")
        #expect(Self.attribute("data-differs", of: "<p class=\"differs-note\"", in: html) == "lr,bf16")
        #expect(html.contains("(not set)"))
        let same = DashboardPage.panels([a, a], status: "")
        #expect(same.contains("The runs have the same settings."))
    }

    @Test func thePredictionSitsBesideTheMeasurement() throws {
        let run = try Self.run([#"{"record":"header","prediction":{"ms_per_iter":100,"memory_bytes":1073741824,"source":"planner"}}"#,
                                #"{"iteration":1,"ms_per_iter":300,"peak_memory_bytes":1000000000}"#,
                                #"{"iteration":2,"ms_per_iter":110,"peak_memory_bytes":1073741824}"#,
                                #"{"iteration":3,"ms_per_iter":90,"peak_memory_bytes":1073741824}"#])
        let html = PredictionTable.html([run])
        #expect(html.contains("<td>ms per iteration</td><td>100</td><td>100</td><td>+0%</td>"),
                "the median after the first interval (warm-up)")
        #expect(html.contains("<td>peak memory</td><td>1 GiB</td><td>1 GiB</td><td>+0%</td>"))
        let plot = DashboardMetric.all.first { $0.id == "time" }!.plot([run]).svg
        #expect(plot.contains("class=\"reference\""), "the prediction as a dashed line")
        // With a batch-size ramp-up only the intervals at the predicted batch are measured.
        let ramped = try Self.run([#"{"record":"header","prediction":{"ms_per_iter":200,"global_batch_size":16}}"#,
                                   #"{"iteration":1,"ms_per_iter":300,"global_batch_size":8}"#,
                                   #"{"iteration":2,"ms_per_iter":100,"global_batch_size":8}"#,
                                   #"{"iteration":3,"ms_per_iter":100,"global_batch_size":8}"#,
                                   #"{"iteration":4,"ms_per_iter":190,"global_batch_size":16}"#,
                                   #"{"iteration":5,"ms_per_iter":210,"global_batch_size":16}"#])
        #expect(PredictionTable.html([ramped]).contains("<td>ms per iteration</td><td>200</td><td>200</td><td>+0%</td>"))
    }

    /// A corrupt or hand-edited header cannot make the server trap or draw without end.
    @Test func anImpossibleLayoutIsNamedNotDrawn() throws {
        let huge = try Self.run([#"{"record":"header","layout":{"tensor_parallel":100000,"pipeline_parallel":100000,"data_parallel":999999999,"ranks":[]}}"#])
        #expect(LayoutGrid.html(huge).contains("TP 100000 x PP 100000 x DP 999999999 = 9.99999999e+18 ranks: too many to draw"))
        let wide = try Self.run([#"{"record":"header","layout":{"tensor_parallel":64,"pipeline_parallel":128,"data_parallel":1000,"ranks":[]}}"#])
        let html = LayoutGrid.html(wide)
        #expect(html.components(separatedBy: "<td class=\"rank\"").count - 1 == 64 * 128)
        #expect(html.contains("999 more identical replicas not drawn"))
    }

    @Test func aLongRunDrawsFewerPointsButCountsThemAll() {
        let points = (1...10_000).map { (x: Double($0), y: 1 / Double($0)) }
        let svg = LinePlot(id: "loss", title: "loss", series: [LinePlot.Series(label: "run", key: "lm_loss", points: points,
                                                                               colour: 0)]).svg
        #expect(svg.contains("data-points=\"10000\" data-last=\"0.0001\""))
        let polyline = svg[svg.range(of: " points=\"")!.upperBound...].prefix { $0 != "\"" }
        #expect(polyline.split(separator: " ").count <= LinePlot.maxDrawnPoints + 2)
    }

    @Test func textIsEscaped() {
        let plot = LinePlot(id: "x", title: "<script>alert(1)</script>", series: [])
        #expect(!plot.svg.contains("<script>"))
        #expect(HTML.escape("a\"b'<&>") == "a&quot;b&#39;&lt;&amp;&gt;")
    }

    @Test func ticksAreRoundAndIterationsWhole() {
        #expect(LinePlot.ticks(0, 10) == [0, 2, 4, 6, 8, 10])
        #expect(LinePlot.ticks(1, 2, minimumStep: 1) == [1, 2])
        #expect(LinePlot.short(123456) == "123.456k")
        #expect(DashboardMetric.bytes(1536 * 1048576) == "1.5 GiB")
    }

    @Test func theServerAnswersThePageAndRefusesEverythingElse() async throws {
        let path = try RunMetricsTests.temporaryFile(#"{"iteration":1,"lm_loss":8.0}"# + "\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let server = DashboardServer(runs: DashboardRuns(paths: [path])) { "finished" }
        let app = Application(router: server.router())
        try await app.test(.router) { client in
            try await client.execute(uri: "/", method: .get) { response in
                #expect(response.status == .ok)
                let body = String(buffer: response.body)
                #expect(body.hasPrefix("<!DOCTYPE html>"))
                #expect(body.contains("data-status=\"finished\""))
                #expect(!body.contains("http://") && !body.contains("https://"), "nothing is fetched from elsewhere")
            }
            try await client.execute(uri: "/panels", method: .get) { response in
                #expect(String(buffer: response.body).contains("data-plot=\"loss\" data-points=\"1\""))
            }
            for uri in ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/panels/../../etc/passwd", path, "/metrics.jsonl"] {
                try await client.execute(uri: uri, method: .get) { response in
                    #expect(response.status == .notFound, "\(uri)")
                    #expect(!String(buffer: response.body).contains("root:"))
                }
            }
            try await client.execute(uri: "/panels", method: .post, body: ByteBuffer(string: "x")) { response in
                #expect(response.status != .ok, "read-only")
            }
        }
    }

    @Test func requestsBeyondTheLimitAreAnswered503() async throws {
        let server = DashboardServer(runs: DashboardRuns(paths: []), maxRequests: 0) { "" }
        try await Application(router: server.router()).test(.router) { client in
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
            }
        }
    }
}
