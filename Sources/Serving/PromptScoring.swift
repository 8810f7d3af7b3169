#if canImport(Glibc)
import Glibc
#endif
import Kernels
import Models

/// Log-probabilities of the prompts that ask for them (`echo` with `logprobs`), and of each
/// generated token.
///
/// Prompts that join the engine together are scored together: longest first, padded on the right
/// to the longest of their forward (the attention is causal, so padding after a prompt changes
/// nothing before it), as many per forward as fit `scoringTokensPerForward` and need little
/// padding (`scoringPaddingSlack`): a padded token costs what a real one does, while a forward's
/// fixed cost is a few dozen tokens' worth (124M on 2 cores, estimated from
/// `scripts/bench/serve_scoring.py`'s rates at 64 tokens alone and 8 x 64 together: about 1.4 ms
/// a token, 20-40 ms a forward), so prompts of much the same length share forwards and the rest
/// go alone.
extension CompletionEngine {
    /// Most tokens (prompts x padded length) in one scoring forward; a longer prompt goes alone.
    /// It bounds the logits of a forward (4 bytes x padded vocabulary per token: 412 MB for GPT-2).
    public static let scoringTokensPerForward = 2048

    /// What a prompt asks to have scored: its tokens, the alternatives to report per position, and
    /// whether the logits after its last token are wanted too.
    struct PromptToScore {
        var tokens: [Int32]
        var alternatives: Int
        var keepsNextLogits = false
    }

    /// A scored prompt: its tokens with their log-probabilities (nil for the first) and top
    /// alternatives, and the logits after its last token when they were asked for (what a prompt
    /// that generates chooses its first token from, without the decoder reading the prompt again).
    struct ScoredPrompt {
        var tokens: [ScoredToken]
        var nextLogits: [Float]?
    }

    /// Each prompt scored, in the order given. A forward that fails (a token the model cannot
    /// read) fails only the prompts that cause it: its prompts are then scored one by one. Right
    /// after the forward that scored prompt `index`, while the model still holds its activations
    /// (its keys and values at row `row` of that forward), `scored(index, row, prompt)` is called.
    func scorePrompts(_ prompts: [PromptToScore],
                      scored: (_ index: Int, _ row: Int, _ prompt: ScoredPrompt) -> Void = { _, _, _ in })
        -> [Result<ScoredPrompt, any Error>] {
        var results = [Result<ScoredPrompt, any Error>?](repeating: nil, count: prompts.count)
        func score(_ group: [Int]) throws {
            for (row, (index, prompt)) in zip(group, try scoreTogether(group.map { prompts[$0] })).enumerated() {
                results[index] = .success(prompt)
                scored(index, row, prompt)
            }
        }
        for group in Self.scoringGroups(lengths: prompts.map(\.tokens.count), budget: Self.scoringTokensPerForward) {
            do {
                try score(group)
            } catch where group.count > 1 {
                for index in group {
                    do { try score([index]) } catch { results[index] = .failure(error) }
                }
            } catch {
                results[group[0]] = .failure(error)
            }
        }
        return results.map { $0! }
    }

    /// Padding a prompt may take to share a forward: 16 tokens, or an eighth of the longest.
    static func scoringPaddingSlack(longest: Int) -> Int { max(16, longest / 8) }

    /// Indices of prompts of `lengths` grouped into forwards: longest first, each group the next
    /// prompts in that order that fit `budget` tokens padded to its first (longest) one's length
    /// and are at most `scoringPaddingSlack` shorter than it; at least one.
    static func scoringGroups(lengths: [Int], budget: Int) -> [[Int]] {
        let order = lengths.indices.sorted { lengths[$0] > lengths[$1] || (lengths[$0] == lengths[$1] && $0 < $1) }
        var groups = [[Int]](), start = 0
        while start < order.count {
            let longest = lengths[order[start]], shortest = longest - scoringPaddingSlack(longest: longest)
            var end = start + 1
            while end < order.count && (end - start + 1) * longest <= budget && lengths[order[end]] >= shortest { end += 1 }
            groups.append(Array(order[start..<end]))
            start = end
        }
        return groups
    }

    /// One forward over `prompts` padded to the longest; every position's score in parallel.
    private func scoreTogether(_ prompts: [PromptToScore]) throws -> [ScoredPrompt] {
        scoringForwards += 1
        let length = try model.forward(padded: prompts.map(\.tokens))
        let vocab = model.config.paddedVocabSize, logits = UnsafePointer(model.logits)
        return prompts.enumerated().map { b, prompt in
            var scored = prompt.tokens.map { ScoredToken(id: $0, logprob: nil, top: []) }
            scored.withUnsafeMutableBufferPointer { scored in
                // Position i is predicted by the logits at i - 1; each thread writes its own positions.
                ThreadPool.current.parallelFor(scored.count - 1, minimumPerThread: 8) { positions in
                    for i in positions.lowerBound + 1 ..< positions.upperBound + 1 {
                        let row = UnsafeBufferPointer(start: logits + (b * length + i - 1) * vocab, count: vocab)
                        scored[i] = score(scored[i].id, logits: row, alternatives: prompt.alternatives)
                    }
                }
            }
            let next = logits + (b * length + prompt.tokens.count - 1) * vocab
            return ScoredPrompt(tokens: scored, nextLogits: prompt.keepsNextLogits ? Array(UnsafeBufferPointer(start: next, count: vocab)) : nil)
        }
    }

    /// `id`'s log-probability under `logits` (over the tokenizer's ids) and the top alternatives.
    func score(_ id: Int32, logits: UnsafeBufferPointer<Float>, alternatives: Int?) -> ScoredToken {
        let n = min(vocabularySize, logits.count)
        var maximum = logits[0]
        for j in 1..<n where logits[j] > maximum { maximum = logits[j] }
        var sum = 0.0
        for j in 0..<n { sum += exp(Double(logits[j] - maximum)) }
        let logNormalizer = Double(maximum) + log(sum)
        let top = Self.largest(alternatives ?? 0, of: UnsafeBufferPointer(rebasing: logits[0..<n]))
            .map { (id: Int32($0), logprob: Double(logits[$0]) - logNormalizer) }
        return ScoredToken(id: id, logprob: Double(logits[Int(id)]) - logNormalizer, top: top)
    }

    /// The indices of the `k` largest values, largest first, equal values in index order (what a
    /// stable sort would put first), in one pass that keeps the best `k` so far.
    static func largest(_ k: Int, of values: UnsafeBufferPointer<Float>) -> [Int] {
        guard k > 0 else { return [] }
        var best = [Int]()
        best.reserveCapacity(k + 1)
        for j in values.indices {
            let value = values[j]
            if best.count == k, !(value > values[best[k - 1]]) { continue }
            var position = best.count
            while position > 0 && values[best[position - 1]] < value { position -= 1 }
            best.insert(j, at: position)
            if best.count > k { best.removeLast() }
        }
        return best
    }
}
