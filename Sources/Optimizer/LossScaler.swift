/// Loss scaling for fp16 training (Micikevicius et al. 2018, as Megatron-LM uses it): the loss
/// is multiplied by `scale` before the backward so that small gradients survive fp16's range,
/// and the gradients are divided by it again before clipping and the update. An iteration whose
/// gradients overflowed (inf or NaN) is skipped.
///
/// The dynamic scaler follows megatron-core's `DynamicGradScaler` exactly:
/// - an overflow resets the count of clean iterations and uses up one unit of hysteresis; once
///   none is left (and on every further overflow until the scale grows again) the scale is
///   multiplied by `backoffFactor`, never going below `minimumScale`;
/// - `window` clean iterations in a row multiply the scale by `growthFactor`, restore the
///   hysteresis and start a new window.
///
/// A clean iteration does not restore the hysteresis (only a growth does), and the scale and
/// factors are fp32 numbers multiplied in fp32, as megatron-core's tensors are: a scale that is
/// not a power of two follows Megatron's sequence exactly.
public struct LossScaler: Sendable, Equatable {
    /// The scale of the next iteration's loss (an fp32 value).
    public var scale: Double { Double(value) }
    private var value: Float
    /// Whether the scale adapts (`--loss-scale` absent) or stays put.
    public let isDynamic: Bool
    public let minimumScale: Float
    public let growthFactor: Float
    public let backoffFactor: Float
    /// Clean iterations before the scale grows (`--loss-scale-window`).
    public let window: Int
    /// Overflows tolerated before the scale backs off (`--hysteresis`).
    public let hysteresis: Int
    /// Clean iterations since the last overflow or growth.
    public private(set) var growthTracker = 0
    /// Hysteresis left before the next backoff.
    public private(set) var hysteresisTracker: Int
    /// Overflowing iterations in a row at the lowest scale (`isAtMinimum` when they overflowed;
    /// an overflow above it or a clean iteration starts the count again).
    public private(set) var overflowsAtMinimum = 0

    /// A dynamic scaler (Megatron's defaults: 2^32, 1, 2, 0.5, 1000, 2).
    public init(initialScale: Double, minimumScale: Double, growthFactor: Double = 2, backoffFactor: Double = 0.5,
                window: Int, hysteresis: Int) {
        precondition(initialScale > 0 && minimumScale > 0 && growthFactor >= 1 && backoffFactor > 0 && backoffFactor < 1
                     && window > 0 && hysteresis > 0, "LossScaler: invalid settings")
        value = Float(initialScale)
        isDynamic = true
        self.minimumScale = Float(minimumScale)
        self.growthFactor = Float(growthFactor)
        self.backoffFactor = Float(backoffFactor)
        self.window = window
        self.hysteresis = hysteresis
        hysteresisTracker = hysteresis
    }

    /// A static scale (`--loss-scale`): overflowing iterations are still skipped.
    public init(constant scale: Double) {
        precondition(scale > 0, "LossScaler: the scale must be positive")
        value = Float(scale)
        isDynamic = false
        minimumScale = value
        growthFactor = 1
        backoffFactor = 1
        window = 1
        hysteresis = 1
        hysteresisTracker = 1
    }

    /// Whether the scale can go no lower (at `minimumScale`, or static).
    public var isAtMinimum: Bool { !isDynamic || value <= minimumScale }

    /// Records one iteration's outcome: `overflow` when its gradients were not finite.
    public mutating func update(overflow: Bool) {
        overflowsAtMinimum = overflow && isAtMinimum ? overflowsAtMinimum + 1 : 0
        guard isDynamic else { return }
        if overflow {
            growthTracker = 0
            hysteresisTracker -= 1
            if hysteresisTracker <= 0 { value = max(value * backoffFactor, minimumScale) }
        } else {
            growthTracker += 1
            if growthTracker == window {
                growthTracker = 0
                hysteresisTracker = hysteresis
                value *= growthFactor
            }
        }
    }

    /// What a checkpoint keeps to resume the scaler exactly.
    public struct State: Sendable, Equatable {
        public var scale: Double
        public var growthTracker: Int
        public var hysteresisTracker: Int
        public var overflowsAtMinimum: Int
        /// Whether it was a dynamic scaler's (a static scale's state is not taken over by one).
        public var isDynamic: Bool

        public init(scale: Double, growthTracker: Int, hysteresisTracker: Int, overflowsAtMinimum: Int = 0,
                    isDynamic: Bool = true) {
            self.scale = scale
            self.growthTracker = growthTracker
            self.hysteresisTracker = hysteresisTracker
            self.overflowsAtMinimum = overflowsAtMinimum
            self.isDynamic = isDynamic
        }
    }

    /// The scaler's state.
    public var state: State {
        State(scale: scale, growthTracker: growthTracker, hysteresisTracker: hysteresisTracker,
              overflowsAtMinimum: overflowsAtMinimum, isDynamic: isDynamic)
    }

    /// Continues from a saved state of the same kind of scaler; another kind's state is ignored
    /// (a static scale resumed without `--loss-scale` starts the dynamic scale afresh; a static
    /// scaler keeps its own scale).
    public mutating func restore(_ state: State) {
        guard state.isDynamic == isDynamic else { return }
        overflowsAtMinimum = state.overflowsAtMinimum
        guard isDynamic else { return }
        value = Float(state.scale)
        growthTracker = state.growthTracker
        hysteresisTracker = state.hysteresisTracker
    }
}
