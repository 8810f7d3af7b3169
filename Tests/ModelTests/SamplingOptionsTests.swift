import Models
import Testing

/// `generate`'s sampling options: NaN, infinite and out-of-range values are refused with the flag
/// and the value in the message.
@Suite struct SamplingOptionsTests {
    @Test func nonFiniteAndOutOfRangeValuesAreNamed() {
        let cases: [(SamplingOptions, ConfigurationError)] = [
            (SamplingOptions(temperature: .infinity), .invalid(flag: "--temperature", reason: "must be a finite number >= 0, got inf")),
            (SamplingOptions(temperature: .nan), .invalid(flag: "--temperature", reason: "must be a finite number >= 0, got nan")),
            (SamplingOptions(temperature: -1), .invalid(flag: "--temperature", reason: "must be a finite number >= 0, got -1.0")),
            (SamplingOptions(topP: .nan), .invalid(flag: "--top-p", reason: "must be in [0, 1], got nan")),
            (SamplingOptions(topP: 1.5), .invalid(flag: "--top-p", reason: "must be in [0, 1], got 1.5")),
            (SamplingOptions(topK: -3), .invalid(flag: "--top-k", reason: "must be >= 0, got -3")),
        ]
        for (options, error) in cases {
            #expect(throws: error) { try options.validate() }
        }
        #expect(throws: Never.self) { try SamplingOptions(temperature: 0.7, topP: 0.9).validate() }
    }
}
