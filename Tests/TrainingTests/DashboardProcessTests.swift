#if canImport(Glibc)
import Glibc
#endif
import FileSupport
import Foundation
import Testing

/// `megatron train --dashboard-port` as a real process: the page is served while the run trains,
/// and the metrics file gains what the page draws (a header record; TFLOP/s, MFU, per-stage times).
@Suite(.serialized) struct DashboardProcessTests {
    /// The response to `GET path` from 127.0.0.1:`port` (read until the server closes), or nil.
    static func get(_ path: String, port: UInt16) -> String? {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return nil }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        var timeout = timeval(tv_sec: 20, tv_usec: 0)  // a server that keeps the connection open cannot hang the test
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
        guard send(socket, request, request.count, 0) == request.count else { return nil }
        var response = [UInt8](), buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(socket, &buffer, buffer.count, 0)
            if n <= 0 { break }
            response += buffer[0..<n]
        }
        return String(decoding: response, as: UTF8.self)
    }

    @Test func theLivePageIsServedWhileTheRunTrains() throws {
        let directory = ResumeTests.temporaryDirectory()
        let metrics = directory + "/metrics.jsonl"
        let run = try TrainProcessTests.Run(["--metrics-file", metrics, "--dashboard-port", "0", "--exit-signal-handler",
                                             "--pipeline-model-parallel-size", "2", "--log-interval", "2"])
        TrainProcessTests.waitForLines(metrics, 2, while: run)
        let stdout = (try? String(contentsOfFile: run.output + "/stdout", encoding: .utf8)) ?? ""
        let port = stdout.firstRange(of: "> dashboard on http://127.0.0.1:").flatMap { found in
            UInt16(stdout[found.upperBound...].prefix { $0.isNumber })
        }
        let page = port.flatMap { Self.get("/panels", port: $0) }
        let health = port.flatMap { Self.get("/../metrics.jsonl", port: $0) }
        kill(run.process.processIdentifier, SIGTERM)
        let result = run.wait()
        #expect(result.status == 0, "\(result.stderr)")
        #expect(port != nil, "\(stdout)")
        #expect(page?.hasPrefix("HTTP/1.1 200") == true)
        #expect(page?.contains("data-status=\"training: iteration") == true)
        #expect(page?.contains("data-plot=\"loss\"") == true)
        #expect(page?.contains("data-tp=\"1\" data-pp=\"2\" data-dp=\"1\"") == true, "the layout grid")
        #expect(health?.hasPrefix("HTTP/1.1 404") == true, "no file is served")

        let records = try String(contentsOfFile: metrics, encoding: .utf8).split(separator: "\n").map {
            try JSONValue.parse(String($0))
        }
        let header = try #require(records.first)
        #expect(header["record"] == .string("header"))
        #expect(header["settings"]?["dashboard-port"] == .number(0))
        #expect(header["layout"]?["pipeline_parallel"] == .number(2))
        guard case let .array(ranks)? = header["layout"]?["ranks"] else { Issue.record("no ranks"); return }
        #expect(ranks.count == 2)
        #expect(ranks.last?["layers"] == .string("1"), "stage 1 holds the second of two layers")
        #expect(header["prediction"]?["source"] != nil)
        let iteration = try #require(records.first { $0["lm_loss"] != nil })
        #expect(iteration["iteration"] == .number(2), "logged every second iteration")
        for key in ["tflops", "mfu", "peak_memory_bytes"] {
            guard case .number(let value)? = iteration[key] else { Issue.record("no \(key)"); continue }
            #expect(value > 0)
        }
        guard case let .array(compute)? = iteration["stage_compute_s"], case let .array(wait)? = iteration["stage_wait_s"] else {
            Issue.record("no per-stage times"); return
        }
        #expect(compute.count == 2 && wait.count == 2, "both pipeline stages, gathered to rank 0 at the logged iteration")
        #expect(compute.allSatisfy { if case .number(let x) = $0 { x > 0 } else { false } })
    }

    @Test func aDashboardNeedsAMetricsFile() throws {
        let result = try TrainProcessTests.Run(["--dashboard-port", "0", "--exit-interval", "1"]).wait()
        #expect(result.status != 0)
        #expect(result.stderr.contains("--dashboard-port: needs --metrics-file"), "\(result.stderr)")
        let hostOnly = try TrainProcessTests.Run(["--dashboard-host", "0.0.0.0", "--exit-interval", "1"]).wait()
        #expect(hostOnly.status != 0)
        #expect(hostOnly.stderr.contains("--dashboard-host: needs --dashboard-port"), "\(hostOnly.stderr)")
    }
}
