import Synchronization

/// Gathers the prompts waiting for the model so that they decode together (continuous
/// batching): each submitted prompt queues a job on `InferenceQueue`, and whichever of those jobs
/// runs first drives `CompletionEngine.run`, which before every decoding step takes prompts still
/// waiting into the free slots (up to `CompletionEngine.maxBatch` decode at once), so a prompt
/// that arrives while others decode joins them at the next step; each prompt's result goes to
/// its client as soon as it ends. The jobs of prompts taken that way then find nothing to do.
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

    private let queue: InferenceQueue<CompletionEngine>
    private let pending = Mutex<[Waiting]>([])

    init(queue: InferenceQueue<CompletionEngine>) { self.queue = queue }

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
    /// at once, queuing nothing, when the queue cannot take them all.
    func submit(_ requests: [CompletionRequest], onText: (@Sendable (Int, String) -> Void)? = nil) throws(ServeError) -> Submitted {
        var items = [Waiting]()
        for (index, request) in requests.enumerated() {
            var itemText: (@Sendable (String) -> Void)?
            if let onText { itemText = { @Sendable text in onText(index, text) } }
            let item = Waiting(request: request, onText: itemText)
            pending.withLock { $0.append(item) }
            do {
                _ = try queue.start { [self] engine in runWaiting(engine) }
            } catch {
                // Take back what this request queued that the engine has not taken yet.
                pending.withLock { list in list.removeAll { waiting in items.contains { $0 === waiting } || waiting === item } }
                throw error
            }
            items.append(item)
        }
        return Submitted(items: items)
    }

    /// On the worker: completes the waiting prompts, taking in new ones as slots free up.
    private func runWaiting(_ engine: CompletionEngine) {
        engine.run { room in
            pending.withLock { list -> [CompletionJob] in
                let taken = list.prefix(room)
                list.removeFirst(taken.count)
                return taken.map { item in CompletionJob(request: item.request, onText: item.onText, done: item.deliver) }
            }
        }
    }
}
