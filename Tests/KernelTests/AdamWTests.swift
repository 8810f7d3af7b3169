import Foundation
import Kernels
import Testing
import TestSupport

/// AdamW against a Float64 transcription of PyTorch's update rule, over several steps, with and
/// without weight decay and with a gradient scale (as clipping uses it).
@Suite struct AdamWTests {
    @Test(arguments: [(true, Float(1)), (false, Float(1)), (true, Float(0.25))])
    func matchesFloat64Reference(decay: Bool, gradScale: Float) {
        let count = 37
        let hp = AdamW.Hyperparameters(learningRate: 1e-2, beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0.1)
        var params = randomFloats(count, seed: 21)
        var m = [Float](repeating: 0, count: count), v = m
        var p64 = params.map(Double.init), m64 = [Double](repeating: 0, count: count), v64 = m64
        for step in 1...3 {
            let grads = randomFloats(count, seed: UInt64(30 + step), std: 0.1)
            AdamW.update(params: &params, grads: grads, m: &m, v: &v, count: count, step: step,
                         hyperparameters: hp, decay: decay, gradScale: gradScale)
            let lr = Double(hp.learningRate), b1 = Double(hp.beta1), b2 = Double(hp.beta2)
            for i in 0..<count {
                let g = Double(grads[i]) * Double(gradScale)
                if decay { p64[i] *= 1 - lr * Double(hp.weightDecay) }
                m64[i] = b1 * m64[i] + (1 - b1) * g
                v64[i] = b2 * v64[i] + (1 - b2) * g * g
                let denominator = (v64[i] / (1 - pow(b2, Double(step)))).squareRoot() + Double(hp.epsilon)
                p64[i] -= lr / (1 - pow(b1, Double(step))) * m64[i] / denominator
            }
        }
        #expect(relativeError(params, p64) < 1e-6)
        #expect(relativeError(m, m64) < 1e-6)
        #expect(relativeError(v, v64) < 1e-6)
    }
}
