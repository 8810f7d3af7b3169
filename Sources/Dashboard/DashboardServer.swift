import FileSupport
import Hummingbird
import Synchronization

/// The runs a dashboard shows: a reader per metrics file, refreshed on every request (only the
/// lines appended since the last one are parsed).
public final class DashboardRuns: Sendable {
    private let readers: Mutex<[MetricsFileReader]>
    /// The page's title.
    public let title: String

    /// `paths` in the order given; runs whose file names repeat are told apart by their folder.
    public init(paths: [String], title: String = "megatron-swift dashboard") {
        let names = Self.names(for: paths)
        readers = Mutex(zip(paths, names).map { MetricsFileReader(path: $0, name: $1) })
        self.title = title
    }

    /// Every run as read now; a file that cannot be read (not created yet, removed) keeps what
    /// was read before and adds a warning.
    public func snapshot() -> [RunMetrics] {
        readers.withLock { readers in
            readers.map { reader in
                do { return try reader.refresh() } catch {
                    var run = reader.run
                    run.warnings.append("cannot read the file now: \(error)")
                    return run
                }
            }
        }
    }

    /// Short names: the shortest end of each path that no other run's path ends with (the file
    /// name, or parent/file, ...); a file given twice is numbered.
    static func names(for paths: [String]) -> [String] {
        let parts = paths.map { $0.split(separator: "/").map(String.init) }
        let unique = paths.indices.map { index -> String in
            for length in 1...max(1, parts[index].count) {
                let end = Array(parts[index].suffix(length))
                if !paths.indices.contains(where: { $0 != index && Array(parts[$0].suffix(length)) == end }) {
                    return end.joined(separator: "/")
                }
            }
            return paths[index]
        }
        return unique.indices.map { index in
            let earlier = unique[..<index].filter { $0 == unique[index] }.count
            return earlier == 0 ? unique[index] : "\(unique[index]) (\(earlier + 1))"
        }
    }
}

/// `megatron dashboard` and `train --dashboard-port`: the page on Hummingbird, read-only. It
/// answers `GET /` (the page), `GET /panels` (its refreshed part) and `GET /health`, and nothing
/// else: no file is served, so no path can reach outside the runs' files. At most
/// `maxRequests` requests are answered at a time; more get 503 at once.
public struct DashboardServer: Sendable {
    public let runs: DashboardRuns
    /// The line under the title ("training, iteration 40 of 100", "finished", ...).
    public let status: @Sendable () -> String
    public let maxRequests: Int

    public init(runs: DashboardRuns, maxRequests: Int = 16, status: @escaping @Sendable () -> String) {
        self.runs = runs
        self.status = status
        self.maxRequests = maxRequests
    }

    /// The routes.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: RequestLimit(limit: maxRequests))
        router.get("/") { _, _ in
            Self.html(DashboardPage.page(runs.snapshot(), status: status(), title: runs.title))
        }
        router.get("/panels") { _, _ in Self.html(DashboardPage.panels(runs.snapshot(), status: status())) }
        router.get("/health") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: JSONValue.object([("status", .string("ok"))]).serialized)))
        }
        return router
    }

    /// An `Application` on `host:port` (port 0: any free port, told to `onRunning`).
    public func application(host: String, port: Int, onRunning: @escaping @Sendable (Int) async -> Void = { _ in })
        -> some ApplicationProtocol {
        Application(router: router(), configuration: .init(address: .hostname(host, port: port), serverName: "megatron-dashboard"),
                    onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) })
    }

    static func html(_ text: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}

/// Answers 503 while `limit` requests are in flight.
struct RequestLimit<Context: RequestContext>: RouterMiddleware {
    let limit: Int
    let inFlight = InFlight()

    final class InFlight: Sendable {
        let count = Atomic<Int>(0)
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let now = inFlight.count.wrappingAdd(1, ordering: .relaxed).newValue
        defer { inFlight.count.wrappingSubtract(1, ordering: .relaxed) }
        guard now <= limit else {
            return Response(status: .serviceUnavailable, headers: [.contentType: "text/plain"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: "busy: \(limit) requests in flight\n")))
        }
        return try await next(request, context)
    }
}
