import FileSupport
import Foundation
import Testing
import TestSupport
@testable import Curation

/// The quality classifier against scikit-learn's LogisticRegression on the same hashed features
/// and data (fixture by `scripts/reference/curation_fixtures.py`: 800 training and 400 held-out
/// documents from overlapping distributions, 12% of labels flipped), and GPT-3's Pareto rule
/// against numpy.
@Suite struct ClassifierTests {
    static let fixture = try! JSONValue.parse(utf8: try MappedFile.read(path: fixturesDirectory() + "/classifier.json"))

    static func rows(_ key: String) -> [(text: String, positive: Bool)] {
        guard case let .array(rows)? = fixture[key] else { return [] }
        return rows.compactMap { row in
            guard case let .string(text)? = row["text"], case let .bool(label)? = row["label"] else { return nil }
            return (text, label)
        }
    }

    @Test func heldOutAccuracyIsScikitLearns() throws {
        var model = QualityClassifier(buckets: 1 << 16)
        // The features equal the reference's.
        let train = Self.rows("train"), test = Self.rows("test")
        guard case let .array(expected)? = Self.fixture["first_features"] else { Issue.record("no features"); return }
        let ours = model.features(train[0].text)
        #expect(ours.count == expected.count)
        for ((bucket, value), pair) in zip(ours, expected) {
            #expect(pair.serialized.hasPrefix("[\(bucket),"), "\(pair.serialized)")
            if case let .array(items) = pair, case let .number(reference)? = items.last { #expect(abs(Double(value) - reference) < 1e-6) }
        }
        model.train(train.map { (model.features($0.text), $0.positive) })
        let correct = test.filter { (model.score($0.text) > 0.5) == $0.positive }.count
        let accuracy = Double(correct) / Double(test.count)
        guard case let .number(reference)? = Self.fixture["sklearn_test_accuracy"] else { Issue.record("no accuracy"); return }
        print("quality classifier: held-out accuracy \(accuracy), scikit-learn \(reference)")
        #expect(reference > 0.7 && reference < 0.95)
        #expect(abs(accuracy - reference) <= 0.01)
        // Saved and loaded, the same scores; a file that is not a model is named.
        let directory = CurationFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try model.save(to: directory + "/model.json")
        #expect(try QualityClassifier.load(from: directory + "/model.json") == model)
        try "{}".write(toFile: directory + "/bad.json", atomically: true, encoding: .utf8)
        #expect { try QualityClassifier.load(from: directory + "/bad.json") } throws: { "\($0)".contains("bad.json: not a quality classifier") }
    }

    @Test func paretoDrawsAreNumpys() {
        var sampler = ParetoSampler(seed: 5)
        let draws = (0..<20).map { _ in sampler.pareto(9) }
        let reference = MinHashTests.numbers(Self.fixture["pareto_seed_5_alpha_9"])
        #expect(reference.count == 20)
        for (ours, theirs) in zip(draws, reference) { #expect(abs(ours - theirs) <= 1e-12 * max(1, theirs)) }
    }
}
