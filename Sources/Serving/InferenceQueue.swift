import Dispatch
import Synchronization

/// Why the server could not take a request.
public enum ServeError: Error, Equatable {
    /// The queue of waiting requests is full (answered 503 at once).
    case busy
    /// A request that cannot be run; the message names the field (answered 400).
    case badRequest(String)
    /// The body is larger than the limit, bytes (answered 413).
    case tooLarge(Int)
}

/// The one worker that runs the model, with a bounded number of requests waiting for it: the
/// model and its buffers are not shared between threads, and a client never waits behind more
/// than `capacity` others (one more is refused at once instead of queued without bound).
public final class InferenceQueue<Engine>: @unchecked Sendable {
    private let worker = DispatchQueue(label: "megatron.serve.inference")
    private let waiting = Mutex(0)
    /// Requests that may wait; more are refused.
    public let capacity: Int
    /// Only touched on `worker`.
    private let engine: Engine

    public init(engine: Engine, capacity: Int) {
        self.engine = engine
        self.capacity = max(1, capacity)
    }

    /// Requests waiting or running now.
    public var load: Int { waiting.withLock { $0 } }

    /// Runs `work` on the worker once the requests before it are done; throws `.busy` at once
    /// when `capacity` requests are already waiting.
    public func run<T: Sendable>(_ work: @escaping @Sendable (Engine) throws -> T) async throws -> T {
        try await start(work).value
    }

    /// Queues `work` and returns at once with the task that will hold its result; throws `.busy`
    /// instead when `capacity` requests are already waiting.
    public func start<T: Sendable>(_ work: @escaping @Sendable (Engine) throws -> T) throws(ServeError) -> Task<T, any Error> {
        let admitted = waiting.withLock { count -> Bool in
            guard count < capacity else { return false }
            count += 1
            return true
        }
        guard admitted else { throw .busy }
        return Task {
            try await withCheckedThrowingContinuation { continuation in
                worker.async { [self] in
                    let result = Result { try work(engine) }
                    // Leave the count before the waiter resumes: a client that sees its answer
                    // and sends the next request must find its place free.
                    waiting.withLock { $0 -= 1 }
                    continuation.resume(with: result)
                }
            }
        }
    }
}
