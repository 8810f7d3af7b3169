import Accelerator

/// Token plus learned position embedding: `out[b, t] = wte[tokens[b, t]] + wpe[t]`.
public enum Embedding {
    /// Embeds `batch x seqLength` token ids into `out` (`[batch, seqLength, channels]`).
    /// Token ids must lie in `0..<vocabSize` of `wte` (`[vocabSize, channels]`).
    ///
    /// Vocabulary-parallel use: `wte` holds only the rows `vocabStart ..< vocabStart + vocabCount`;
    /// tokens outside that range contribute zero (their rank's partial sum supplies them), and
    /// `wpe` may be nil so that only one rank adds the positions before the sum.
    public static func forward(out: UnsafeMutablePointer<Float>, tokens: UnsafePointer<Int32>,
                               wte: UnsafePointer<Float>, wpe: UnsafePointer<Float>?,
                               batch: Int, seqLength: Int, channels: Int,
                               vocabStart: Int = 0, vocabCount: Int = Int.max) {
        if let gpu = GPU.active, gpu.owns(wte) {
            return gpu.embeddingForward(out: out, tokens: tokens, wte: wte, wpe: wpe, batch: batch, seqLength: seqLength,
                                        channels: channels, vocabStart: vocabStart, vocabCount: vocabCount)
        }
        GPU.hostWillRead()  // this CPU path may read GPU results (managed memory)
        let c = channels
        ThreadPool.current.parallelFor(batch * seqLength, minimumPerThread: max(1, 32768 / c)) { range in
            for n in range {
                let local = Int(tokens[n]) - vocabStart
                let y = out + n * c
                if local < 0 || local >= vocabCount {
                    if let wpe { y.update(from: wpe + (n % seqLength) * c, count: c) } else { y.update(repeating: 0, count: c) }
                    continue
                }
                let token = wte + local * c
                guard let wpe else {
                    y.update(from: token, count: c)
                    continue
                }
                let position = wpe + (n % seqLength) * c
                var i = 0
                while i + 16 <= c {
                    storeVector(loadVector(token + i) + loadVector(position + i), y + i)
                    i += 16
                }
                while i < c {
                    y[i] = token[i] + position[i]
                    i += 1
                }
            }
        }
    }

    /// Backward of `forward`: adds `dout` rows into the rows of `dwte` named by the tokens and
    /// into `dwpe`'s position rows. Threads split the channels, so repeated tokens never race.
    /// With a vocabulary shard, only rows of tokens in `vocabStart ..< vocabStart + vocabCount`
    /// are updated.
    public static func backward(dwte: UnsafeMutablePointer<Float>, dwpe: UnsafeMutablePointer<Float>,
                                dout: UnsafePointer<Float>, tokens: UnsafePointer<Int32>,
                                batch: Int, seqLength: Int, channels: Int,
                                vocabStart: Int = 0, vocabCount: Int = Int.max) {
        if let gpu = GPU.active, gpu.owns(dwte) {
            return gpu.embeddingBackward(dwte: dwte, dwpe: dwpe, dout: dout, tokens: tokens, batch: batch,
                                         seqLength: seqLength, channels: channels, vocabStart: vocabStart,
                                         vocabCount: vocabCount)
        }
        GPU.hostWillRead()
        let c = channels
        let rows = batch * seqLength
        let minimumChannels = max(16, 65536 / max(1, rows))
        ThreadPool.current.parallelFor(c, minimumPerThread: minimumChannels) { channelRange in
            let lo = channelRange.lowerBound
            let width = channelRange.count
            for n in 0..<rows {
                let g = dout + n * c + lo
                let dposition = dwpe + (n % seqLength) * c + lo
                let local = Int(tokens[n]) - vocabStart
                if local < 0 || local >= vocabCount {
                    for i in 0..<width { dposition[i] += g[i] }
                    continue
                }
                let dtoken = dwte + local * c + lo
                for i in 0..<width {
                    dtoken[i] += g[i]
                    dposition[i] += g[i]
                }
            }
        }
    }
}
