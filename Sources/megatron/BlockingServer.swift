import Dispatch
import Synchronization

/// Runs a server on a task while the command's thread waits: `serve` and `dashboard` serve this
/// way until SIGINT/SIGTERM stops the service.
enum BlockingServer {
    /// Runs `service` (a server's `runService()`, listening on `host:port`) and returns when it
    /// ends; its failure is rethrown, a failure to listen as `ListenError`'s one line.
    static func run(host: String, port: Int, _ service: @escaping @Sendable () async throws -> Void) throws {
        let finished = DispatchSemaphore(value: 0)
        let failure = Mutex<(any Error)?>(nil)
        Task {
            do {
                try await service()
            } catch {
                failure.withLock { $0 = error }
            }
            finished.signal()
        }
        finished.wait()
        if let error = failure.withLock({ $0 }) { throw ListenError.describe(error, host: host, port: port) }
    }
}
