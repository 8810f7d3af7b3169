import Synchronization

/// Gathers the prompts waiting for the model so that they decode together (continuous
/// batching): one driver job at a time runs `CompletionEngine.run` on the model's worker, which
/// before every decoding step takes prompts still waiting into the free slots (up to
/// `CompletionEngine.maxBatch` decode at once), so a prompt that arrives while others decode joins
/// them at the next step; each prompt's result goes to its client as soon as it ends. At most
/// `capacity` prompts wait or decode; a request that would pass that is refused whole (`.busy`)
/// before any of its prompts is queued.
final class RequestBatcher: Sendable {
    /// A prompt waiting for its completion, and where its text and completion go.
    fileprivate final class Waiting: Sendable {
        let request: CompletionRequest
        let onText: (@Sendable (String) -> Void)?
        let result: AsyncThrowingStream<Completion, any Error>
        private let sink: AsyncThrowingStream<Completion, any Error>.Continuation

        init(request: CompletionRequest, onText: (@Sendable (String) -> Void)?) {
            self.request = request
            self.onText = onText
            (result, sink) = AsyncThrowingStream<Completion, any Error>.makeStream()
        }

        func deliver(_ outcome: Result<Completion, any Error>) {
            switch outcome {
            case let .success(completion): sink.yield(completion); sink.finish()
            case let .failure(error): sink.finish(throwing: error)
            }
        }

        /// The completion, once the engine has delivered it.
        func value() async throws -> Completion {
            for try await completion in result { return completion }
            throw CancellationError()
        }
    }

    /// Prompts waiting for a slot, prompts decoding, and whether a driver job is queued or running.
    private struct State {
        var pending: [Waiting] = []
        var active = 0
        var driving = false
    }

    private let queue: InferenceQueue<CompletionEngine>
    private let state = Mutex(State())
    /// Prompts that may wait or decode at once.
    let capacity: Int

    init(queue: InferenceQueue<CompletionEngine>, capacity: Int) {
        self.queue = queue
        self.capacity = max(1, capacity)
    }

    /// Prompts waiting or decoding now.
    var load: Int { state.withLock { $0.pending.count + $0.active } }

    /// Prompts submitted together, whose completions come as the engine delivers them.
    struct Submitted: Sendable {
        fileprivate let items: [Waiting]

        /// The completions, in the order of the requests.
        func completions() async throws -> [Completion] {
            var results = [Completion]()
            for item in items { results.append(try await item.value()) }
            return results
        }
    }

    /// Queues `requests`, each to decode possibly side by side with other clients' prompts;
    /// `onText(index, text)` receives request `index`'s text as it is generated. Throws `.busy`
    /// at once, queuing nothing, when they do not all fit under `capacity`.
    func submit(_ requests: [CompletionRequest], onText: (@Sendable (Int, String) -> Void)? = nil) throws(ServeError) -> Submitted {
        let items = requests.enumerated().map { index, request in
            var itemText: (@Sendable (String) -> Void)?
            if let onText { itemText = { @Sendable text in onText(index, text) } }
            return Waiting(request: request, onText: itemText)
        }
        guard items.count <= capacity else {
            throw .badRequest("\(items.count) prompts in one request exceed the server's --queue-size \(capacity)")
        }
        let startsDriver = try state.withLock { (state) throws(ServeError) -> Bool in
            guard state.pending.count + state.active + items.count <= capacity else { throw .busy }
            state.pending += items
            defer { state.driving = true }
            return !state.driving
        }
        if startsDriver {
            do {
                _ = try queue.start { [self] engine in drive(engine) }
            } catch {
                // The worker's own queue is full (only when it is shared): hand the prompts back.
                state.withLock { state in
                    state.pending.removeAll { waiting in items.contains { $0 === waiting } }
                    state.driving = false
                }
                throw error
            }
        }
        return Submitted(items: items)
    }

    /// On the worker: completes the waiting prompts, taking in new ones as slots free up, until
    /// none is left (checked under the same lock `submit` queues under, so none is stranded).
    private func drive(_ engine: CompletionEngine) {
        while true {
            engine.run { room in
                state.withLock { state -> [CompletionJob] in
                    let taken = Array(state.pending.prefix(room))
                    state.pending.removeFirst(taken.count)
                    state.active += taken.count
                    return taken.map { item in
                        CompletionJob(request: item.request, onText: item.onText) { [self] outcome in
                            self.state.withLock { $0.active -= 1 }
                            item.deliver(outcome)
                        }
                    }
                }
            }
            let done = state.withLock { state -> Bool in
                if state.pending.isEmpty { state.driving = false }
                return !state.driving
            }
            if done { return }
        }
    }
}
