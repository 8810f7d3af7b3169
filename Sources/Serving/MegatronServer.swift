import FileSupport
import Foundation
import Hummingbird
import Tokenizer

/// `megatron serve`: Megatron-LM's text generation API (`PUT /api`) and OpenAI-compatible
/// completions (`POST /v1/completions`, `GET /v1/models`) with `GET /health`, on Hummingbird.
///
/// Every request is parsed and checked on the connection's task (a malformed one gets a 400 with
/// a JSON error naming the field, without touching the model); valid ones go to `RequestBatcher`,
/// where at most `limits.queueCapacity` prompts wait or decode (503 at once beyond that) and
/// decode together on the one worker that runs the model (`InferenceQueue`). `runService` stops on SIGTERM or SIGINT after the requests
/// in flight are answered.
public struct MegatronServer: Sendable {
    let queue: InferenceQueue<CompletionEngine>
    /// Gathers the prompts that can decode together, across requests.
    let batcher: RequestBatcher
    let tokenizer: Tokenizer
    let maxPromptTokens: Int
    let limits: ServerLimits
    /// The name `/v1/models` reports.
    let modelName: String

    public init(engine: CompletionEngine, limits: ServerLimits = ServerLimits(), modelName: String) {
        tokenizer = engine.tokenizer
        maxPromptTokens = engine.maxPromptTokens
        queue = InferenceQueue(engine: engine, capacity: limits.queueCapacity)
        batcher = RequestBatcher(queue: queue, capacity: limits.queueCapacity)
        self.limits = limits
        self.modelName = modelName
    }

    /// The routes.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/health") { _, _ in Self.json(.object([("status", .string("ok")), ("queued", .number(Double(batcher.load)))])) }
        router.get("/v1/models") { _, _ in
            Self.json(.object([("object", .string("list")), ("data", .array([.object([
                ("id", .string(modelName)), ("object", .string("model")), ("owned_by", .string("megatron-swift")),
                ("max_model_len", .number(Double(maxPromptTokens))),
            ])]))]))
        }
        router.put("/api") { request, _ in
            await respond {
                let call = try GenerateCall(try await fields(request), tokenizer: tokenizer, maxPromptTokens: maxPromptTokens,
                                            limits: limits)
                return Self.json(call.response(try await complete(call.prompts, call.request), tokenizer: tokenizer))
            }
        }
        router.post("/v1/completions") { request, _ in
            await respond {
                let call = try CompletionsCall(try await fields(request), tokenizer: tokenizer, maxPromptTokens: maxPromptTokens,
                                               limits: limits)
                let id = "cmpl-\(UInt64.random(in: 0...UInt64.max))", created = Int(Date.now.timeIntervalSince1970)
                if call.stream { return try stream(call, id: id, created: created) }
                let completions = try await batcher.submit(call.requests).completions()
                return Self.json(call.response(completions, tokenizer: tokenizer, id: id, created: created))
            }
        }
        return router
    }

    /// An `Application` on `host:port` (port 0: any free port, told to `onRunning`).
    public func application(host: String, port: Int, onRunning: @escaping @Sendable (Int) async -> Void = { _ in })
        -> some ApplicationProtocol {
        Application(router: router(), configuration: .init(address: .hostname(host, port: port), serverName: "megatron"),
                    onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) })
    }

    /// The request's JSON body, at most `limits.maxBodyBytes` of it.
    func fields(_ request: Request) async throws -> RequestFields {
        var request = request
        let buffer: ByteBuffer
        do { buffer = try await request.collectBody(upTo: limits.maxBodyBytes) } catch {
            throw ServeError.tooLarge(limits.maxBodyBytes)
        }
        return try RequestFields(Array(buffer.readableBytesView))
    }

    /// Runs `prompts` on the model's worker with `template`'s settings, side by side with
    /// whatever other prompts decode (this request's and other clients'); throws `.busy` at once
    /// when the queue is full.
    func complete(_ prompts: [[Int32]], _ template: CompletionRequest) async throws -> [Completion] {
        try await batcher.submit(template.applied(to: prompts)).completions()
    }

    /// Server-sent events, as OpenAI streams a completion: a `text_completion` chunk per piece of
    /// generated text (after one with the prompt's text when it is echoed), one with the
    /// `finish_reason` per prompt, then `data: [DONE]`.
    func stream(_ call: CompletionsCall, id: String, created: Int) throws -> Response {
        let (events, sink) = AsyncStream<ByteBuffer>.makeStream()
        @Sendable func send(_ index: Int, _ text: String, _ finish: String?) {
            let chunk = JSONValue.object([
                ("id", .string(id)), ("object", .string("text_completion")), ("created", .number(Double(created))),
                ("model", .string(call.model)),
                ("choices", .array([.object([("index", .number(Double(index))), ("text", .string(text)), ("logprobs", .null),
                                             ("finish_reason", finish.map { .string($0) } ?? .null)])])),
            ])
            sink.yield(ByteBuffer(string: "data: \(chunk.serialized)\n\n"))
        }
        let requests = call.requests
        if call.request.echo {  // the prompts' text comes first
            for (index, request) in requests.enumerated() { send(index, (try? tokenizer.decode(request.prompt)) ?? "", nil) }
        }
        let submitted = try batcher.submit(requests) { send($0, $1, nil) }
        Task {
            do {
                let completions = try await submitted.completions()
                for (index, completion) in completions.enumerated() { send(index, "", completion.finishReason) }
            } catch {
                sink.yield(ByteBuffer(string: "data: \(JSONValue.object([("error", .object([("message", .string("\(error)"))]))]).serialized)\n\n"))
            }
            sink.yield(ByteBuffer(string: "data: [DONE]\n\n"))
            sink.finish()
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                        body: ResponseBody(asyncSequence: events))
    }

    /// `body`'s response, or the error it threw as a JSON error with its status.
    func respond(_ body: () async throws -> Response) async -> Response {
        do { return try await body() } catch let error as ServeError {
            switch error {
            case let .badRequest(message): return Self.error(message, status: .badRequest)
            case .busy: return Self.error("the server is busy (\(limits.queueCapacity) requests waiting); retry later", status: .serviceUnavailable)
            case let .tooLarge(limit): return Self.error("the body exceeds \(limit) bytes", status: .contentTooLarge)
            }
        } catch {
            return Self.error("\(error)", status: .internalServerError)
        }
    }

    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: value.serialized)))
    }

    static func error(_ message: String, status: HTTPResponse.Status) -> Response {
        json(.object([("error", .object([("message", .string(message)), ("type", .string(status.reasonPhrase)),
                                          ("code", .number(Double(status.code)))]))]), status: status)
    }
}
