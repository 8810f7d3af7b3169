#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Accelerator

/// AdamW with decoupled weight decay and bias correction, in PyTorch's order of operations:
/// `p *= 1 - lr * wd; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
///  p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.
public enum AdamW {
    /// Hyper-parameters of one update.
    public struct Hyperparameters: Sendable, Equatable {
        public var learningRate: Float
        public var beta1: Float
        public var beta2: Float
        public var epsilon: Float
        public var weightDecay: Float

        /// Megatron / MT-NLG defaults for betas and epsilon.
        public init(learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.95,
                    epsilon: Float = 1e-8, weightDecay: Float = 0.1) {
            self.learningRate = learningRate
            self.beta1 = beta1
            self.beta2 = beta2
            self.epsilon = epsilon
            self.weightDecay = weightDecay
        }
    }

    /// Updates `count` parameters in place at step `step` (1-based). `gradScale` multiplies every
    /// gradient first (for clipping or loss-scale removal); `decay` false skips weight decay
    /// (biases and LayerNorm parameters).
    public static func update(params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>,
                              m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
                              count: Int, step: Int, hyperparameters hp: Hyperparameters,
                              decay: Bool, gradScale: Float = 1) {
        let b1 = hp.beta1, b2 = hp.beta2
        let correction1 = 1 - Float(pow(Double(b1), Double(step)))
        let correction2 = 1 - Float(pow(Double(b2), Double(step)))
        let stepSize = hp.learningRate / correction1
        let inverseSqrtCorrection2 = 1 / correction2.squareRoot()
        let shrink: Float = decay ? 1 - hp.learningRate * hp.weightDecay : 1
        if let gpu = GPU.active {
            return gpu.adamW(params: params, grads: grads, m: m, v: v, count: count, beta1: b1, beta2: b2,
                             epsilon: hp.epsilon, stepSize: stepSize, inverseSqrtCorrection2: inverseSqrtCorrection2,
                             shrink: shrink, gradScale: gradScale)
        }
        ThreadPool.current.parallelFor(count, minimumPerThread: 32768) { range in
            let b1v = FloatVector(repeating: b1), c1v = FloatVector(repeating: 1 - b1)
            let b2v = FloatVector(repeating: b2), c2v = FloatVector(repeating: 1 - b2)
            let scaleV = FloatVector(repeating: gradScale), shrinkV = FloatVector(repeating: shrink)
            let stepV = FloatVector(repeating: stepSize), epsV = FloatVector(repeating: hp.epsilon)
            let sqrtC2V = FloatVector(repeating: inverseSqrtCorrection2)
            var i = range.lowerBound
            while i + 16 <= range.upperBound {
                let g = loadVector(grads + i) * scaleV
                let mi = (loadVector(m + i) * b1v).addingProduct(c1v, g)
                let vi = (loadVector(v + i) * b2v).addingProduct(c2v, g * g)
                storeVector(mi, m + i)
                storeVector(vi, v + i)
                let denominator: FloatVector = vi.squareRoot() * sqrtC2V + epsV
                let p = loadVector(params + i) * shrinkV
                storeVector(p - stepV * mi / denominator, params + i)
                i += 16
            }
            while i < range.upperBound {
                let g = grads[i] * gradScale
                m[i] = b1 * m[i] + (1 - b1) * g
                v[i] = b2 * v[i] + (1 - b2) * g * g
                let denominator = v[i].squareRoot() * inverseSqrtCorrection2 + hp.epsilon
                params[i] = params[i] * shrink - stepSize * m[i] / denominator
                i += 1
            }
        }
    }
}
