import Kernels
import Parameters
import Accelerator

/// Global-norm gradient clipping, as Megatron's `--clip-grad`.
public enum GradientClipping {
    /// Sum of squares of the gradients, tensor `i` weighted by `weight(i)` (Float64 accumulation).
    public static func squares(_ grads: ParameterStore, weight: (Int) -> Double) -> Double {
        var total = 0.0
        for (index, spec) in grads.layout.specs.enumerated() {
            let w = weight(index)
            guard w != 0 else { continue }
            let p = grads.pointer(at: index)
            if let gpu = GPU.active {  // --device cuda: summed on the GPU
                total += w * gpu.sumOfSquares(p, count: spec.count)
                continue
            }
            total += w * SumOfSquares.of(p, count: spec.count)
        }
        return total
    }

    /// The factor Megatron scales the gradients by: `clip / (norm + 1e-6)` when below 1, else 1
    /// (`clip <= 0` disables clipping).
    public static func coefficient(norm: Double, clip: Double) -> Double {
        guard clip > 0 else { return 1 }
        let coefficient = clip / (norm + 1e-6)
        return min(coefficient, 1)
    }
}
