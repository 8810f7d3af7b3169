import Accelerator

extension Embedding {
    /// `forward` from bf16 tables, as Megatron's bf16 model looks tokens up in its bf16 weights:
    /// each row is the widened token row plus the widened position row (the sum of two bf16
    /// values, which the caller rounds to bf16 with the rest of the embedding output).
    ///
    /// `wte` holds `vocabCount` rows (this rank's vocabulary range, starting at `vocabStart`);
    /// `wpe` at least `seqLength` rows. On a GPU the tables are widened into scratch and looked
    /// up by the fp32 kernel (the same values).
    public static func forward(out: UnsafeMutablePointer<Float>, tokens: UnsafePointer<Int32>,
                               wte: UnsafePointer<BFloat16>, wpe: UnsafePointer<BFloat16>?,
                               batch: Int, seqLength: Int, channels: Int, vocabStart: Int, vocabCount: Int) {
        let c = channels
        if let gpu = GPU.active, gpu.owns(wte) {
            let positionCount = wpe == nil ? 0 : seqLength * c
            return ScratchPool.withBytes((vocabCount * c + positionCount) * MemoryLayout<Float>.stride) { raw in
                let table = raw.bindMemory(to: Float.self, capacity: vocabCount * c + positionCount)
                gpu.bf16Widen(out: table, inp: UnsafeRawPointer(wte).assumingMemoryBound(to: UInt16.self), count: vocabCount * c)
                if let wpe {
                    gpu.bf16Widen(out: table + vocabCount * c, inp: UnsafeRawPointer(wpe).assumingMemoryBound(to: UInt16.self),
                                  count: positionCount)
                }
                forward(out: out, tokens: tokens, wte: table, wpe: wpe == nil ? nil : UnsafePointer(table + vocabCount * c),
                        batch: batch, seqLength: seqLength, channels: c, vocabStart: vocabStart, vocabCount: vocabCount)
            }
        }
        GPU.hostWillRead()
        ThreadPool.current.parallelFor(batch * seqLength, minimumPerThread: max(1, 32768 / c)) { range in
            for n in range {
                let local = Int(tokens[n]) - vocabStart
                let y = out + n * c
                let position = wpe.map { $0 + (n % seqLength) * c }
                guard local >= 0 && local < vocabCount else {
                    if let position { BFloat16Conversion.widenSerial(out: y, inp: position, count: c) } else { y.update(repeating: 0, count: c) }
                    continue
                }
                let token = wte + local * c
                guard let position else {
                    BFloat16Conversion.widenSerial(out: y, inp: token, count: c)
                    continue
                }
                var i = 0
                while i + 16 <= c {
                    storeVector(widenVector(token + i) + widenVector(position + i), y + i)
                    i += 16
                }
                while i < c {
                    y[i] = token[i].float + position[i].float
                    i += 1
                }
            }
        }
    }

    /// 16 bf16 values widened to fp32 (exact).
    @inline(__always)
    private static func widenVector(_ values: UnsafePointer<BFloat16>) -> FloatVector {
        let half = UnsafeRawPointer(values).loadUnaligned(as: SIMD16<UInt16>.self)
        return unsafeBitCast(SIMD16<UInt32>(truncatingIfNeeded: half) &<< 16, to: FloatVector.self)
    }
}
