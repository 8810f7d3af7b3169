import Optimizer

extension Checkpoint {
    /// Where a rank's Adam moments live.
    public enum Moments {
        /// Moments of every local tensor (AdamW over the whole local model).
        case whole(AdamWOptimizer)
        /// This data-parallel rank's flat slice (ZeRO-1).
        case sharded(DistributedOptimizer)

        /// The moments of a training step's optimizer.
        init(_ optimizer: any ModelOptimizer) {
            if let sharded = optimizer as? DistributedOptimizer {
                self = .sharded(sharded)
            } else if let whole = optimizer as? AdamWOptimizer {
                self = .whole(whole)
            } else {
                preconditionFailure("checkpoints hold AdamW moments, whole or sharded")
            }
        }

        /// The distributed optimizer holding a model's master weights (a model without them is
        /// only ever trained by one).
        var masterHolder: DistributedOptimizer {
            guard case .sharded(let optimizer) = self, optimizer.masters != nil else {
                preconditionFailure("a model without master weights is trained by a distributed optimizer holding them")
            }
            return optimizer
        }

        var step: Int {
            switch self {
            case .whole(let optimizer): optimizer.step
            case .sharded(let optimizer): optimizer.step
            }
        }
    }
}
