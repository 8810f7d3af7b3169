#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Megatron's learning-rate schedule, counted in samples: linear warmup from 0 to `maxLR` over
/// `warmupSamples`, then constant, linear or cosine decay to `minLR` at `decaySamples`, held at
/// `minLR` afterwards. The update of an iteration uses the rate at the samples consumed before it.
public struct LearningRateSchedule: Sendable, Equatable, Codable {
    public enum Style: String, Sendable, Codable, CaseIterable {
        case constant, linear, cosine
    }

    public var maxLR: Double
    public var minLR: Double
    public var style: Style
    public var warmupSamples: Int
    public var decaySamples: Int

    public init(maxLR: Double, minLR: Double = 0, style: Style = .linear, warmupSamples: Int = 0, decaySamples: Int) {
        self.maxLR = maxLR
        self.minLR = minLR
        self.style = style
        self.warmupSamples = warmupSamples
        self.decaySamples = decaySamples
    }

    /// The learning rate after `samples` training samples.
    public func learningRate(afterSamples samples: Int) -> Double {
        if warmupSamples > 0 && samples <= warmupSamples {
            return maxLR * Double(samples) / Double(warmupSamples)
        }
        if style == .constant { return maxLR }
        if samples > decaySamples { return minLR }
        let span = Double(decaySamples - warmupSamples)
        let ratio = span > 0 ? Double(samples - warmupSamples) / span : 1
        let coefficient = style == .linear ? 1 - ratio : 0.5 * (cos(Double.pi * ratio) + 1)
        return minLR + coefficient * (maxLR - minLR)
    }
}
