import ArgumentParser
import Dashboard
import Dispatch
import FileSupport
import Synchronization

/// `megatron dashboard`: the training dashboard of finished (or running) runs, from their
/// `--metrics-file`s; several files are drawn side by side, and the settings that differ named.
struct DashboardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "Serve the training dashboard of one or more --metrics-file JSONL files (read-only web page).")

    @Option(name: .customLong("metrics-file"), help: "A run's metrics file (train --metrics-file); repeat to compare runs.")
    var metricsFiles: [String] = []

    @Option(name: .long, help: "Address to listen on (loopback by default).")
    var host = "127.0.0.1"

    @Option(name: .long, help: "Port to listen on (0: any free port, printed at start).")
    var port = 8080

    func validate() throws {
        guard !metricsFiles.isEmpty else { throw ValidationError("give at least one --metrics-file") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535, got \(port)") }
        for path in metricsFiles {
            if PathKind(path) == .folder {
                throw ValidationError("--metrics-file \(path) is a folder; give the JSONL file train --metrics-file wrote")
            }
        }
    }

    func run() throws {
        let runs = DashboardRuns(paths: metricsFiles)
        for run in runs.snapshot() where run.lines == 0 && !run.warnings.isEmpty {
            throw ValidationError("--metrics-file \(run.path): \(run.warnings.last!)")  // missing or unreadable
        }
        let count = metricsFiles.count
        let server = DashboardServer(runs: runs) { "\(count) run\(count == 1 ? "" : "s") read from files" }
        let host = host, port = port
        try BlockingServer.run(host: host, port: port) {
            try await server.application(host: host, port: port) { bound in printLine("> dashboard on http://\(host):\(bound)/") }
                .runService()
        }
    }
}

/// Runs a dashboard server in the background of a training run.
enum DashboardService {
    /// Starts serving in the background; returns once the server listens (its address) or failed
    /// to (the error: a port in use, say).
    static func start(_ server: DashboardServer, host: String, port: Int) throws -> String {
        let ready = DispatchSemaphore(value: 0)
        let outcome = Mutex<Result<String, any Error>?>(nil)
        Task.detached {
            do {
                try await server.application(host: host, port: port) { bound in
                    outcome.withLock { $0 = .success("http://\(host):\(bound)/") }
                    ready.signal()
                }.run()
            } catch {
                outcome.withLock { if $0 == nil { $0 = .failure(error) } }
                ready.signal()
            }
        }
        ready.wait()
        do { return try outcome.withLock { $0! }.get() } catch {
            throw ListenError.describe(error, host: host, port: port, flag: "--dashboard-port")
        }
    }
}
