/// Sequences decoded side by side in the slots of a `GPTInference`, each joining and leaving at
/// any step (continuous batching): every `step` feeds each active sequence the next chunk of its
/// prompt (up to `prefillRows` prompt tokens a step) or the token its `choose` picked last, in
/// one forward, so the weights are read once for all of them. Once a sequence has consumed its prompt, `choose` receives the logits for its next
/// position and returns the token to feed (the caller records it), or nil to end the sequence;
/// a sequence also ends when it fills the model, so that it never holds more than
/// `maxPositionEmbeddings` tokens (`choose` is only asked for a token that still fits).
/// `finished` is called once when a sequence leaves its slot: with nil, or with the error that
/// stopped the step (which ends every sequence of that step).
///
/// The one decoding loop of the project: `GPTInference.generate` and the server's completions
/// both run on it.
public final class BatchDecoder {
    public typealias Choose = (UnsafeBufferPointer<Float>) -> Int32?
    public typealias Finished = (GPTInputError?) -> Void

    private struct Sequence {
        let prompt: [Int32]
        var fed = 0
        /// The token taken at the next step once the prompt is read.
        var feed: Int32
        let choose: Choose
        let finished: Finished
    }

    public let inference: GPTInference
    private var slots: [Sequence?]
    /// Prompt tokens read by prefill steps so far (a prompt added with its keys and values read none).
    public private(set) var promptTokensRead = 0

    /// Decodes in `inference`'s sequences, which it resets.
    public init(inference: GPTInference) {
        self.inference = inference
        inference.reset()
        slots = Array(repeating: nil, count: inference.sequences)
    }

    /// Slots a new sequence can take now.
    public var freeSlots: Int { slots.reduce(0) { $0 + ($1 == nil ? 1 : 0) } }

    /// Sequences decoding now.
    public var activeCount: Int { slots.count - freeSlots }

    /// Starts decoding `prompt` (non-empty) in a free slot; it is fed from the next step.
    public func add(prompt: [Int32], choose: @escaping Choose, finished: @escaping Finished = { _ in }) {
        precondition(!prompt.isEmpty, "a sequence starts from at least one token")
        guard let slot = slots.firstIndex(where: { $0 == nil }) else { preconditionFailure("no free slot") }
        inference.reset(slot: slot)
        slots[slot] = Sequence(prompt: prompt, feed: prompt[0], choose: choose, finished: finished)
    }

    /// Starts decoding `prompt` whose next-token `logits` are already known (from a full forward
    /// over it): its first token is chosen from them at once, and the sequence ends there when
    /// nothing is chosen or the prompt fills the model. Otherwise it takes a free slot, whose
    /// cache `fill(inference, slot)` fills with the prompt's keys and values
    /// (`GPTInference.adoptForward`), and is fed its token from the next step. When `fill`
    /// cannot, the slot reads the prompt and the chosen token as a prompt instead.
    public func add(prompt: [Int32], logits: UnsafeBufferPointer<Float>, cachedBy fill: (GPTInference, Int) -> Bool,
                    choose: @escaping Choose, finished: @escaping Finished = { _ in }) {
        precondition(!prompt.isEmpty, "a sequence starts from at least one token")
        guard prompt.count < inference.model.config.maxPositionEmbeddings, let token = choose(logits) else { return finished(nil) }
        guard let slot = slots.firstIndex(where: { $0 == nil }) else { preconditionFailure("no free slot") }
        inference.reset(slot: slot)
        if fill(inference, slot) && inference.lengths[slot] == prompt.count {
            slots[slot] = Sequence(prompt: prompt, fed: prompt.count, feed: token, choose: choose, finished: finished)
        } else {
            inference.reset(slot: slot)
            slots[slot] = Sequence(prompt: prompt + [token], feed: prompt[0], choose: choose, finished: finished)
        }
    }

    /// Prompt tokens one step feeds at most, shared by the sequences still reading their prompts.
    public static let prefillRows = 256

    /// One forward of every active sequence (nothing when none is active): a sequence reading its
    /// prompt feeds its next chunk of it at once (prefill), the others their last chosen token.
    public func step() throws(GPTInputError) {
        let active = slots.indices.filter { slots[$0] != nil }
        guard !active.isEmpty else { return }
        let prefilling = active.filter { slots[$0]!.fed < slots[$0]!.prompt.count }.count
        let chunk = max(1, Self.prefillRows / max(prefilling, 1))
        var tokens = [Int32](), rowSlots = [Int](), fedNow = [Int]()
        for slot in active {
            let sequence = slots[slot]!
            if sequence.fed < sequence.prompt.count {
                let part = sequence.prompt[sequence.fed..<min(sequence.fed + chunk, sequence.prompt.count)]
                tokens += part
                rowSlots += Array(repeating: slot, count: part.count)
                fedNow.append(part.count)
                promptTokensRead += part.count
            } else {
                tokens.append(sequence.feed)
                rowSlots.append(slot)
                fedNow.append(1)
            }
        }
        let logits: UnsafeBufferPointer<Float>
        do {
            logits = try inference.append(tokens, slots: rowSlots)  // a row of logits per slot, in `active` order
        } catch {
            for slot in active { leave(slot, error) }
            throw error
        }
        let vocabulary = inference.model.config.paddedVocabSize, maxPositions = inference.model.config.maxPositionEmbeddings
        for (row, slot) in active.enumerated() {
            slots[slot]!.fed += fedNow[row]
            let sequence = slots[slot]!
            if sequence.fed < sequence.prompt.count { continue }
            guard inference.lengths[slot] < maxPositions,
                  let token = sequence.choose(UnsafeBufferPointer(rebasing: logits[(row * vocabulary)..<((row + 1) * vocabulary)]))
            else {
                leave(slot, nil)
                continue
            }
            slots[slot]!.feed = token
        }
    }

    /// Steps until every sequence has ended.
    public func run() throws(GPTInputError) {
        while activeCount > 0 { try step() }
    }

    private func leave(_ slot: Int, _ error: GPTInputError?) {
        let finished = slots[slot]!.finished
        slots[slot] = nil
        finished(error)
    }
}
