import Datasets
import FileSupport
import Foundation
import Testing
import TestSupport
@testable import Curation

/// `curate run`: two datasets with a planted duplicate and a planted task passage go through
/// every step into indexed datasets and a blend that reads back as `train` reads it.
@Suite struct CurationPipelineTests {
    static let tokenizer = repositoryRoot() + "/Tests/DataTests/Fixtures/tokenizer/tokenizer.json"

    static func prose(_ seed: UInt64, words: Int = 120) -> String {
        var generator = SplitMix(seed: seed)
        let vocabulary = ["the", "river", "of", "and", "to", "mill", "that", "with", "farmers", "season", "grain", "water", "rose",
                          "early", "banks", "watched", "concern", "planted", "fields", "spring", "meadow", "diary", "painted", "post"]
        return (0..<words).map { _ in vocabulary[Int(generator.next() % UInt64(vocabulary.count))] }.joined(separator: " ") + "."
    }

    /// The two tests' JSON config over `books.jsonl`, `web.jsonl` and `task.jsonl` in `directory`,
    /// writing into `directory/output`: every step, books by epochs and web by weight.
    static func config(_ directory: String, output: String) -> String {
        """
        {"output_dir": "\(directory)/\(output)", "tokenizer_file": "\(tokenizer)", "train_tokens": 100000,
         "datasets": [{"name": "books", "input": "\(directory)/books.jsonl", "epochs": 3},
                      {"name": "web", "input": "\(directory)/web.jsonl", "weight": 0.5}],
         "filter": {"min_words": 20, "max_duplicate_lines": 0.5},
         "dedup": {"threshold": 0.8},
         "decontaminate": {"task_data": ["\(directory)/task.jsonl"], "min_piece_length": 50}}
        """
    }

    @Test func runsEveryStepIntoABlend() throws {
        let directory = CurationFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let task = "who painted the white horse that stood by the old stone bridge over the quiet northern river at dawn"
        let line = { (text: String) in #"{"text": "\#(text)"}"# }
        try CurationFiles.writeLines([line(Self.prose(1)), line(Self.prose(2)), line(Self.prose(1)), line("too short"),
                                      line(Self.prose(3) + " " + task + " " + Self.prose(4, words: 100))], to: directory + "/web.jsonl")
        try CurationFiles.writeLines([line(Self.prose(5)), line(Self.prose(2))], to: directory + "/books.jsonl")
        try CurationFiles.writeLines([#"{"question": "\#(task)"}"#], to: directory + "/task.jsonl")
        try Self.config(directory, output: "out").write(toFile: directory + "/config.json", atomically: true, encoding: .utf8)
        var log = [String]()
        let summary = try CurationPipeline(configPath: directory + "/config.json").run { log.append($0) }
        let text = log.joined(separator: "\n")
        #expect(text.contains("filter web: documents 5, kept 4"), "\(text)")
        #expect(text.contains("web: documents 4, kept 2, exact duplicates 2"), "\(text)")  // its copy and books' document
        #expect(text.contains("decontaminate web: documents 2, contaminated 1"), "\(text)")
        let blend = try #require(summary.blend)
        #expect(blend.entries.map(\.name) == ["books", "web"])
        let books = try IndexedDataset(prefix: blend.entries[0].prefix)
        #expect(books.sequenceCount == 2 && blend.entries[0].tokens > 0)
        // books: 3 epochs of its tokens out of 100,000 training tokens; web: a share of 0.5; normalised.
        let raw = [3 * Double(blend.entries[0].tokens) / 100_000, 0.5]
        #expect(abs(blend.entries[0].weight - raw[0] / (raw[0] + raw[1])) < 1e-12)
        let shares = try blend.checkedShares(samples: 100_000)
        #expect(zip(shares, blend.entries).allSatisfy { abs($0 - $1.weight) < 1e-4 })
        #expect(try String(contentsOfFile: directory + "/out/data_path.txt", encoding: .utf8).hasSuffix("web_text_document\n"))
        // A rerun reuses every step; after the web input changes, its steps and dedup run again.
        var again = [String]()
        _ = try CurationPipeline(configPath: directory + "/config.json").run { again.append($0) }
        #expect(again.filter { $0.contains("reused") }.count == 7, "\(again)")  // 2 filters, dedup, 2 decontaminations, 2 preprocesses
        try CurationFiles.writeLines([line(Self.prose(1)), line(Self.prose(6))], to: directory + "/web.jsonl")
        var changed = [String]()
        let rerun = try CurationPipeline(configPath: directory + "/config.json").run { changed.append($0) }
        #expect(changed.filter { $0.contains("reused") } == ["filter books: reused (inputs and settings unchanged since it finished)"],
                "\(changed)")
        #expect(rerun.blend?.entries[1].tokens != blend.entries[1].tokens)
        // Weights and epochs together without train_tokens: refused.
        #expect { try Blend([("a", "a", 100, 0.5, nil), ("b", "b", 100, nil, 2)]) } throws: { "\($0)".contains("need train_tokens") }
        let epochsOnly = try Blend([("a", "a", 100, nil, 1), ("b", "b", 300, nil, 2)])
        let weights: [Double] = epochsOnly.entries.map(\.weight)
        let expected: [Double] = [100.0 / 700.0, 600.0 / 700.0]
        #expect(weights == expected)
    }

    /// A `.yaml` config (the JSON config's keys and nesting, as NeMo Curator writes its configs)
    /// curates what the same config in JSON does, byte for byte; a malformed or empty YAML file and
    /// an unknown key in one are errors naming the file.
    @Test func yamlConfigCuratesAsItsJSON() throws {
        let directory = CurationFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let line = { (text: String) in #"{"text": "\#(text)"}"# }
        try CurationFiles.writeLines([line(Self.prose(1)), line(Self.prose(2)), line(Self.prose(1)), line("too short")],
                                     to: directory + "/web.jsonl")
        try CurationFiles.writeLines([line(Self.prose(5)), line(Self.prose(2))], to: directory + "/books.jsonl")
        try CurationFiles.writeLines([#"{"question": "\#(Self.prose(5, words: 30))"}"#], to: directory + "/task.jsonl")
        let yaml = """
            # the same curation as config.json
            output_dir: \(directory)/yaml
            tokenizer_file: \(Self.tokenizer)
            train_tokens: 100000
            datasets:
              - name: books
                input: \(directory)/books.jsonl
                epochs: 3
              - {name: web, input: "\(directory)/web.jsonl", weight: 0.5}
            filter:
              min_words: 20
              max_duplicate_lines: 0.5
            dedup:
              threshold: 0.8
            decontaminate:
              task_data: [\(directory)/task.jsonl]
              min_piece_length: 50
            """
        try Self.config(directory, output: "json").write(toFile: directory + "/config.json", atomically: true, encoding: .utf8)
        try yaml.write(toFile: directory + "/config.yaml", atomically: true, encoding: .utf8)
        let fromJSON = try #require(try CurationPipeline(configPath: directory + "/config.json").run { _ in }.blend)
        let fromYAML = try #require(try CurationPipeline(configPath: directory + "/config.yaml").run { _ in }.blend)
        #expect(fromYAML.entries.map(\.name) == ["books", "web"] && fromYAML.entries.map(\.name) == fromJSON.entries.map(\.name))
        #expect(fromYAML.entries.map(\.tokens) == fromJSON.entries.map(\.tokens))
        #expect(fromYAML.entries.map(\.weight) == fromJSON.entries.map(\.weight))
        for name in ["books", "web"] {
            let a = try MappedFile.read(path: "\(directory)/json/\(name)_text_document.bin")
            #expect(a == (try MappedFile.read(path: "\(directory)/yaml/\(name)_text_document.bin")) && !a.isEmpty, "\(name)")
        }
        for (text, message) in [("output_dir: [unclosed\n", "malformed YAML at line"), ("# nothing\n", "the config is empty"),
                                ("output_dir: x\ndedupe: {}\ndatasets: [{name: a, input: a.jsonl}]\n", "unknown key \"dedupe\"")] {
            try text.write(toFile: directory + "/bad.yml", atomically: true, encoding: .utf8)
            #expect { try CurationPipeline(configPath: directory + "/bad.yml") } throws: {
                "\($0)".hasPrefix(directory + "/bad.yml: ") && "\($0)".contains(message)
            }
        }
    }

    /// A config with an unknown key, or a missing tokenizer, is one error naming it.
    @Test func badConfigsAreNamed() throws {
        let directory = CurationFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for (config, message) in [
            (#"{"output_dir": "x", "datasets": [{"name": "a", "input": "a.jsonl", "weight": 1}], "dedupe": {}}"#, "unknown key \"dedupe\""),
            (#"{"output_dir": "x", "datasets": [{"name": "a", "input": "a.jsonl", "weight": 1}]}"#, "give tokenizer_file"),
            (#"{"output_dir": "x", "datasets": []}"#, "non-empty list"),
            (#"{"output_dir": "x y", "datasets": [{"name": "a", "input": "a.jsonl", "weight": 1}]}"#, "must not contain whitespace"),
            (#"{"output_dir": "x", "datasets": [{"name": "a b", "input": "a.jsonl", "weight": 1}]}"#, "without spaces"),
            (#"{"output_dir": "x", "tokenizer_file": "\#(Self.tokenizer)", "datasets": [{"name": "a", "input": "a.jsonl", "weight": 1}], "dedup": {"num_perm": 0}}"#,
             "dedup.num_perm must be a whole number in 1...4096"),
            (#"{"output_dir": "x", "tokenizer_file": "\#(Self.tokenizer)", "datasets": [{"name": "a", "input": "a.jsonl", "weight": 1}], "dedup": {"num_perm": 16, "bands": 8, "rows": 4}}"#,
             "must not exceed num_perm"),
        ] {
            try config.write(toFile: directory + "/c.json", atomically: true, encoding: .utf8)
            #expect { try CurationPipeline(configPath: directory + "/c.json") } throws: { "\($0)".contains(message) }
        }
    }
}
