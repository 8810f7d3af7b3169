import FileSupport
import Testing
@testable import Datasets

/// GPT sample indices, samples and blends against megatron-core 0.16.1
/// (scripts/reference/indexed_dataset_fixtures.py).
@Suite struct GPTDatasetTests {
    static let fixture = try! DataFixtures.json("megatron_core/gpt_indices.json")
    static let blends = try! DataFixtures.json("megatron_core/blend_indices.json")
    static let cases = fixture["cases"]!.array

    static func config(_ item: JSONValue, cacheDirectory: String) throws -> GPTDatasetConfig {
        let c = item["config"]!
        var config = GPTDatasetConfig(sequenceLength: Int(c["sequence_length"]!.number!),
                                      split: try DataSplit(c["split"]!.string!),
                                      endOfDocumentID: Int32(c["eod"]!.number!))
        config.seed = UInt32(c["random_seed"]!.number!)
        config.addExtraToken = c["add_extra_token_to_sequence"] == .bool(true)
        config.keepPartialValidationSample = c["drop_last_partial_validation_sequence"] == .bool(false)
        config.eodMaskLoss = c["eod_mask_loss"] == .bool(true)
        config.padID = Int32(c["pad_token_id"]!.number!)
        config.cacheDirectory = cacheDirectory
        return config
    }

    @Test func mersenneTwisterMatchesNumpy() {
        var random = NumpyRandomState(seed: 5)
        #expect(random.next32() == 953_453_411)
    }

    @Test func splitStringsGiveMegatronsRanges() throws {
        for example in Self.fixture["split_examples"]!.array {
            let split = try DataSplit(example["split"]!.string!)
            let ranges = split.ranges(count: Int(example["num_elements"]!.number!))
            let expected = example["ranges"]!.array.map(\.ints)
            for (range, bounds) in zip(ranges, expected) where bounds.count == 2 && bounds[1] > bounds[0] {
                #expect(range == bounds[0]..<bounds[1], "split \(split.text)")
            }
        }
        #expect(throws: DatasetError.self) { try DataSplit("0,0,0") }
        #expect(throws: DatasetError.self) { try DataSplit("1,2,3,4") }
        #expect(throws: DatasetError.self) { try DataSplit("") }
    }

    @Test(arguments: 0..<5) func indicesAndSamplesMatchMegatronCore(caseNumber: Int) throws {
        let item = Self.cases[caseNumber]
        let dataset = try IndexedDataset(prefix: DataFixtures.path("megatron_core/" + item["dataset"]!.string!))
        let config = try Self.config(item, cacheDirectory: DataFixtures.temporaryDirectory())
        var checkedSplits = 0
        for (splitIndex, split) in item["splits"]!.array.enumerated() where split["len"]!.number! > 0 {
            let count = split["num_samples"]!.number.map { Int($0) }
            let gpt = try GPTDataset(dataset: dataset, config: config, splitIndex: splitIndex, sampleCount: count)
            #expect(gpt.index.documentIndex == split["document_index"]!.int32s, "\(item["name"]!) \(splitIndex)")
            #expect(gpt.index.sampleIndex.map(Int.init) == split["sample_index"]!.array.flatMap(\.ints))
            #expect(gpt.index.shuffleIndex.map(Int.init) == split["shuffle_index"]!.ints)
            for expected in split["samples"]?.array ?? [] {
                let sample = gpt.sample(Int(expected["index"]!.number!))
                #expect(sample.tokens == expected["tokens"]!.int32s)
                #expect(sample.labels == expected["labels"]!.int32s)
                #expect(sample.lossMask == expected["loss_mask"]!.ints.map(Float.init))
            }
            checkedSplits += 1
        }
        #expect(checkedSplits >= 2)
    }

    @Test func indicesAreCachedAndRebuiltWhenTheDescriptionChanges() throws {
        let dataset = try IndexedDataset(prefix: DataFixtures.path("megatron_core/gpt_docs"))
        var config = try Self.config(Self.cases[1], cacheDirectory: DataFixtures.temporaryDirectory())
        let first = try GPTDataset(dataset: dataset, config: config, splitIndex: 0, sampleCount: 129)
        let second = try GPTDataset(dataset: dataset, config: config, splitIndex: 0, sampleCount: 129)
        #expect(!first.loadedFromCache && second.loadedFromCache)
        #expect(first.index == second.index)
        config.seed = 1235
        let reseeded = try GPTDataset(dataset: dataset, config: config, splitIndex: 0, sampleCount: 129)
        #expect(!reseeded.loadedFromCache && reseeded.index != first.index)

        // A damaged cache file is rebuilt, not trusted.
        config.seed = 1234
        let stem = config.cacheDirectory! + "/" + fnv1a64Hex(GPTDataset.description(
            dataset: dataset, config: config, splitIndex: 0, range: 0..<32,
            parameters: { var p = GPTSampleIndex.Parameters(sequenceLength: 16, sampleCount: 129, seed: 1234); p.dropLastPartialSequence = true; return p }()))
        let path = stem + "-GPTDataset-train-shuffle_index.npy"
        let bytes = try MappedFile.read(path: path)
        try AtomicFile.write(Array(bytes.dropLast(4)), to: path)
        let rebuilt = try GPTDataset(dataset: dataset, config: config, splitIndex: 0, sampleCount: 129)
        #expect(!rebuilt.loadedFromCache && rebuilt.index == first.index)
    }

    /// A corpus preprocessed again in place, with as many sequences and tokens as before but
    /// other documents, is not served the old corpus's cached indices.
    @Test func aCorpusWithTheSameCountsButOtherDocumentsIsReindexed() throws {
        let prefix = DataFixtures.temporaryDirectory() + "/corpus"
        func write(_ cuts: [Int]) throws -> IndexedDataset {
            let writer = try IndexedDatasetWriter(prefix: prefix, dtype: .uint16)
            for (start, end) in zip(cuts, cuts.dropFirst()) { try writer.add(document: (start..<end).map { Int32($0 + 1) }) }
            try writer.finish()
            return try IndexedDataset(prefix: prefix)
        }
        var config = GPTDatasetConfig(sequenceLength: 4, split: try DataSplit("1,0,0"), endOfDocumentID: 0)
        config.cacheDirectory = DataFixtures.temporaryDirectory()
        let first = try write([0, 3, 20, 40])
        let old = try GPTDataset(dataset: first, config: config, splitIndex: 0, sampleCount: 20)
        let second = try write([0, 15, 22, 40])
        #expect(second.sequenceCount == first.sequenceCount && second.tokenCount == first.tokenCount)
        #expect(second.indexDigest != first.indexDigest)
        let reread = try GPTDataset(dataset: second, config: config, splitIndex: 0, sampleCount: 20)
        var elsewhere = config
        elsewhere.cacheDirectory = DataFixtures.temporaryDirectory()
        let fresh = try GPTDataset(dataset: second, config: elsewhere, splitIndex: 0, sampleCount: 20)
        #expect(!reread.loadedFromCache && reread.index == fresh.index && fresh.index != old.index)
    }

    @Test func blendingIndicesMatchMegatronCore() throws {
        for item in Self.blends["build_blending_indices"]!.array {
            let weights = Blending.normalize(item["raw_weights"]!.array.map { $0.number! })
            #expect(weights == item["weights"]!.array.map { $0.number! })
            let (datasets, samples) = Blending.indices(weights: weights, size: Int(item["size"]!.number!))
            #expect(datasets == item["dataset_index"]!.ints)
            #expect(samples == item["dataset_sample_index"]!.ints)
        }
        for item in Self.blends["builder_arithmetic"]!.array {
            let weights = Blending.normalize(item["raw_weights"]!.array.map { $0.number! })
            let sizes = item["sizes"]!.ints
            let targets = item["target_per_dataset_per_split"]!.array.map(\.ints)
            let buffers = item["buffer_per_dataset_per_split"]!.array.map(\.ints)
            for (s, size) in sizes.enumerated() {
                let (target, buffer) = Blending.sampleCounts(weights: weights, size: size)
                #expect(target == targets.map { $0[s] })
                #expect(buffer == buffers.map { $0[s] })
            }
        }
    }

    @Test func weightedDataPathBlendsLikeMegatronCore() throws {
        let e2e = Self.blends["end_to_end"]!
        let words = zip(e2e["raw_weights"]!.array, e2e["prefixes"]!.array).flatMap {
            [String($0.number!), DataFixtures.path("megatron_core/" + $1.string!)]
        }
        var config = GPTDatasetConfig(sequenceLength: Int(e2e["sequence_length"]!.number!),
                                      split: try DataSplit(e2e["split"]!.string!), endOfDocumentID: 999)
        config.seed = UInt32(e2e["random_seed"]!.number!)
        config.cacheDirectory = DataFixtures.temporaryDirectory()
        let sources = try GPTDataBuilder.build(dataPath: try DataPath(words), config: config,
                                               sizes: e2e["sizes"]!.ints.map { $0 })
        for (s, expected) in e2e["splits"]!.array.enumerated() {
            let blend = try #require(sources[s] as? BlendedGPTDataset)
            #expect(blend.datasetIndex == expected["dataset_index"]!.ints)
            #expect(blend.datasetSampleIndex == expected["dataset_sample_index"]!.ints)
            #expect(blend.datasets.map(\.count) == expected["per_dataset_len"]!.ints)
            for sample in expected["first_samples"]!.array {
                #expect(blend.sample(Int(sample["index"]!.number!)).tokens == sample["tokens"]!.int32s)
            }
        }
    }

    /// Megatron's per-split blends (`--train-data-path 0.3 gpt_docs 0.7 gpt_docs_b
    /// --valid-data-path gpt_docs_b`) against megatron-core's builder with `blend_per_split`
    /// (scripts/reference/per_split_blend_fixture.py): each dataset used whole for its split.
    @Test func perSplitBlendsMatchMegatronCore() throws {
        let fixture = try DataFixtures.json("megatron_core/per_split_blend.json")
        var config = GPTDatasetConfig(sequenceLength: 16, split: try DataSplit("969,30,1"), endOfDocumentID: 999)
        config.seed = 1234
        config.cacheDirectory = DataFixtures.temporaryDirectory()
        let path = { (name: String) in DataFixtures.path("megatron_core/" + name) }
        let sources = try GPTDataBuilder.build(
            perSplit: [try DataPath(["0.3", path("gpt_docs"), "0.7", path("gpt_docs_b")]), try DataPath([path("gpt_docs_b")]), nil],
            config: config, sizes: [40, 8, 8])
        let splits = fixture["splits"]!.array
        let train = try #require(sources[0] as? BlendedGPTDataset)
        #expect(train.datasetIndex == splits[0]["dataset_index"]!.ints)
        #expect(train.datasetSampleIndex == splits[0]["dataset_sample_index"]!.ints)
        #expect(train.datasets.map(\.count) == splits[0]["per_dataset_len"]!.ints)
        let valid = try #require(sources[1] as? GPTDataset)
        #expect(valid.count == Int(splits[1]["length"]!.number!))
        #expect(valid.index.shuffleIndex.map(Int.init) == splits[1]["shuffle_index"]!.ints)
        #expect(sources[2] == nil)
        for (source, split) in [(train as GPTSampleSource, splits[0]), (valid, splits[1])] {
            for (j, tokens) in split["first_samples"]!.array.enumerated() { #expect(source.sample(j).tokens == tokens.int32s) }
        }
    }

    @Test func microBatchesAreConsecutiveSamples() throws {
        let dataset = try IndexedDataset(prefix: DataFixtures.path("megatron_core/gpt_docs"))
        let config = try Self.config(Self.cases[0], cacheDirectory: DataFixtures.temporaryDirectory())
        let gpt = try GPTDataset(dataset: dataset, config: config, splitIndex: 0, sampleCount: 20)
        var loader = MicroBatchLoader(source: gpt, microBatchSize: 4, consumedSamples: 8)
        let next = loader.next()
        let batch = try #require(next)
        #expect(batch.batchSize == 4 && batch.sequenceLength == 16)
        #expect(Array(batch.tokens[16..<32]) == gpt.sample(9).tokens)
        #expect(Array(batch.labels[48..<64]) == gpt.sample(11).labels)
        #expect(loader.consumedSamples == 12)
        var count = 1
        while loader.next() != nil { count += 1 }
        #expect(count == (gpt.count - 8) / 4)
    }

    @Test func dataPathParsing() throws {
        #expect(try DataPath(["a"]) == DataPath(prefixes: ["a"], weights: nil))
        #expect(try DataPath(["0.3", "a", "0.7", "b"]).weights == [0.3, 0.7])
        #expect(try DataPath(["a", "b"]).weights == nil)
        #expect(throws: DatasetError.self) { try DataPath(["0.3", "a", "x", "b"]) }
        #expect(throws: DatasetError.self) { try DataPath([]) }
    }
}
