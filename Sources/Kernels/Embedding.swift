/// Token plus learned position embedding: `out[b, t] = wte[tokens[b, t]] + wpe[t]`.
public enum Embedding {
    /// Embeds `batch x seqLength` token ids into `out` (`[batch, seqLength, channels]`).
    /// Token ids must lie in `0..<vocabSize` of `wte` (`[vocabSize, channels]`).
    public static func forward(out: UnsafeMutablePointer<Float>, tokens: UnsafePointer<Int32>,
                               wte: UnsafePointer<Float>, wpe: UnsafePointer<Float>,
                               batch: Int, seqLength: Int, channels: Int) {
        let c = channels
        ThreadPool.shared.parallelFor(batch * seqLength, minimumPerThread: max(1, 32768 / c)) { range in
            for n in range {
                let token = (wte + Int(tokens[n]) * c)
                let position = wpe + (n % seqLength) * c
                let y = out + n * c
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
    public static func backward(dwte: UnsafeMutablePointer<Float>, dwpe: UnsafeMutablePointer<Float>,
                                dout: UnsafePointer<Float>, tokens: UnsafePointer<Int32>,
                                batch: Int, seqLength: Int, channels: Int) {
        let c = channels
        let rows = batch * seqLength
        let minimumChannels = max(16, 65536 / max(1, rows))
        ThreadPool.shared.parallelFor(c, minimumPerThread: minimumChannels) { channelRange in
            let lo = channelRange.lowerBound
            let width = channelRange.count
            for n in 0..<rows {
                let g = dout + n * c + lo
                let dtoken = dwte + Int(tokens[n]) * c + lo
                let dposition = dwpe + (n % seqLength) * c + lo
                for i in 0..<width {
                    dtoken[i] += g[i]
                    dposition[i] += g[i]
                }
            }
        }
    }
}
