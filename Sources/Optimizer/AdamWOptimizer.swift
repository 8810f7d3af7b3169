import Kernels
import Parameters

/// AdamW over a whole parameter store: fp32 moments in stores of the same layout, weight decay
/// only on tensors whose spec asks for it (not biases or LayerNorm parameters, as Megatron).
public final class AdamWOptimizer {
    /// Hyper-parameters; `learningRate` may be changed between steps by a schedule.
    public var hyperparameters: AdamW.Hyperparameters
    /// Completed steps (bias correction uses `step + 1` for the next update).
    public private(set) var step = 0
    /// First moment.
    public let m: ParameterStore
    /// Second moment.
    public let v: ParameterStore

    /// Creates zeroed moments for `layout`.
    public init(layout: ParameterLayout, hyperparameters: AdamW.Hyperparameters) {
        self.hyperparameters = hyperparameters
        m = ParameterStore(layout: layout)
        v = ParameterStore(layout: layout)
    }

    /// Sets the completed step count (when resuming from a checkpoint that holds the moments).
    public func restore(step: Int) {
        self.step = step
    }

    /// Applies one update to `params` from `grads` (each multiplied by `gradScale` first).
    public func update(params: ParameterStore, grads: ParameterStore, gradScale: Float = 1) {
        step += 1
        let layout = params.layout
        for (index, spec) in layout.specs.enumerated() {
            AdamW.update(params: params.pointer(at: index), grads: grads.pointer(at: index),
                         m: m.pointer(at: index), v: v.pointer(at: index), count: spec.count, step: step,
                         hyperparameters: hyperparameters, decay: spec.weightDecay, gradScale: gradScale)
        }
    }
}
