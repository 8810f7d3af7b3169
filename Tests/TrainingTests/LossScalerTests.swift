#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import FileSupport
import Optimizer
import Testing

/// fp16's dynamic loss scaler against megatron-core 0.16.1's own `DynamicGradScaler`, driven
/// through long overflow / no-overflow sequences (scripts/reference/loss_scaler_fixture.py):
/// the scale after every update, and both trackers, are Megatron's exactly.
@Suite struct LossScalerTests {
    struct Case {
        var name: String
        var scaler: LossScaler
        var overflows: [Bool]
        var scales: [Double]
        var growthTrackers: [Int]
        var hysteresisTrackers: [Int]
    }

    static func cases() throws -> [Case] {
        let path = ResumeTests.repository + "/Tests/TrainingTests/Fixtures/dynamic_grad_scaler.json"
        let root = try JSONValue.parse(utf8: Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        guard case .array(let cases)? = root["cases"] else { throw FixtureError.malformed(path) }
        return try cases.map { item in
            func number(_ key: String) throws -> Double {
                guard case .number(let x)? = item[key] else { throw FixtureError.malformed("\(path): \(key)") }
                return x
            }
            func array(_ key: String) throws -> [JSONValue] {
                guard case .array(let values)? = item[key] else { throw FixtureError.malformed("\(path): \(key)") }
                return values
            }
            let numbers = { (key: String) throws -> [Double] in
                try array(key).map { value -> Double in
                    guard case .number(let x) = value else { throw FixtureError.malformed("\(path): \(key)") }
                    return x
                }
            }
            guard case .string(let name)? = item["name"] else { throw FixtureError.malformed(path) }
            return Case(
                name: name,
                scaler: LossScaler(initialScale: try number("initial_scale"), minimumScale: try number("min_scale"),
                                   growthFactor: try number("growth_factor"), backoffFactor: try number("backoff_factor"),
                                   window: Int(try number("growth_interval")), hysteresis: Int(try number("hysteresis"))),
                overflows: try array("found_inf").map { $0 == .bool(true) },
                scales: try numbers("scale_after"),
                growthTrackers: try numbers("growth_tracker_after").map { Int($0) },
                hysteresisTrackers: try numbers("hysteresis_tracker_after").map { Int($0) })
        }
    }

    enum FixtureError: Error { case malformed(String) }

    @Test func scaleSequencesEqualMegatronCore() throws {
        let cases = try Self.cases()
        #expect(cases.count >= 5)
        for c in cases {
            var scaler = c.scaler
            #expect(c.overflows.count > 400 && c.overflows.contains(true) && c.overflows.contains(false))
            var backoffs = 0, growths = 0, clamped = 0
            for (step, overflow) in c.overflows.enumerated() {
                let before = scaler.scale
                scaler.update(overflow: overflow)
                if scaler.scale < before { backoffs += 1 }
                if scaler.scale > before { growths += 1 }
                if overflow && scaler.isAtMinimum { clamped += 1 }
                guard scaler.scale == c.scales[step], scaler.growthTracker == c.growthTrackers[step],
                      scaler.hysteresisTracker == c.hysteresisTrackers[step] else {
                    let ours = "scale \(scaler.scale), trackers \(scaler.growthTracker)/\(scaler.hysteresisTracker)"
                    let megatron = "scale \(c.scales[step]), trackers \(c.growthTrackers[step])/\(c.hysteresisTrackers[step])"
                    Issue.record("\(c.name), update \(step): \(ours), Megatron \(megatron)")
                    break
                }
            }
            // Each sequence backs off, grows and sits at the minimum at some point.
            #expect(backoffs > 0 && growths > 0 && clamped > 0, "\(c.name) does not exercise every rule")
        }
    }

    @Test func aStaticScaleNeverMovesAndIsItsOwnMinimum() {
        var scaler = LossScaler(constant: 1024)
        for overflow in [true, true, false, true, false, false] { scaler.update(overflow: overflow) }
        #expect(scaler.scale == 1024 && scaler.isAtMinimum && !scaler.isDynamic)
    }

    @Test func stateRoundTripsThroughRestore() {
        var scaler = LossScaler(initialScale: 65536, minimumScale: 1, window: 3, hysteresis: 2)
        for overflow in [false, true, false, true, true] { scaler.update(overflow: overflow) }
        var restored = LossScaler(initialScale: 65536, minimumScale: 1, window: 3, hysteresis: 2)
        restored.restore(scaler.state)
        #expect(restored == scaler)
    }
}
