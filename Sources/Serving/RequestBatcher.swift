import Synchronization

/// Gathers the prompts waiting for the model so that they decode together: each submitted
/// prompt queues a job on `InferenceQueue` as before, and whichever of those jobs runs first
/// takes every prompt still waiting (up to `CompletionEngine.maxBatch`) and completes them in one
/// batch, handing each its result; the jobs of the prompts it took then find nothing to do.
/// Prompts that arrive while a batch decodes wait for the next one (static batching).
final class RequestBatcher: Sendable {
    /// A prompt waiting for its completion, and where the completion goes.
    private final class Waiting: Sendable {
        let request: CompletionRequest
        let result: AsyncThrowingStream<Completion, any Error>
        private let sink: AsyncThrowingStream<Completion, any Error>.Continuation

        init(request: CompletionRequest) {
            self.request = request
            (result, sink) = AsyncThrowingStream<Completion, any Error>.makeStream()
        }

        func deliver(_ outcome: Result<Completion, any Error>) {
            switch outcome {
            case let .success(completion): sink.yield(completion); sink.finish()
            case let .failure(error): sink.finish(throwing: error)
            }
        }

        /// The completion, once a batch has delivered it.
        func value() async throws -> Completion {
            for try await completion in result { return completion }
            throw CancellationError()
        }
    }

    private let queue: InferenceQueue<CompletionEngine>
    private let pending = Mutex<[Waiting]>([])

    init(queue: InferenceQueue<CompletionEngine>) { self.queue = queue }

    /// Completes `requests` (prompts that are not scored), each possibly in a batch with other
    /// clients' prompts. Throws `.busy` at once when the queue cannot take them all.
    func complete(_ requests: [CompletionRequest]) async throws -> [Completion] {
        var items = [Waiting]()
        for request in requests {
            let item = Waiting(request: request)
            pending.withLock { $0.append(item) }
            do {
                _ = try queue.start { [self] engine in runBatch(engine) }
            } catch {
                // Take back what this request queued that no batch has taken yet.
                pending.withLock { list in list.removeAll { waiting in items.contains { $0 === waiting } || waiting === item } }
                throw error
            }
            items.append(item)
        }
        var results = [Completion]()
        for item in items { results.append(try await item.value()) }
        return results
    }

    /// On the worker: takes the waiting prompts and completes them together.
    private func runBatch(_ engine: CompletionEngine) {
        let batch = pending.withLock { list -> [Waiting] in
            let taken = Array(list.prefix(CompletionEngine.maxBatch))
            list.removeFirst(taken.count)
            return taken
        }
        guard !batch.isEmpty else { return }
        do {
            let results = try engine.completeTogether(batch.map(\.request))
            for (item, result) in zip(batch, results) { item.deliver(.success(result)) }
        } catch {
            for item in batch { item.deliver(.failure(error)) }
        }
    }
}
