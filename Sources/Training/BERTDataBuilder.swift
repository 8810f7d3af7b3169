import Datasets
import Tokenizer

/// BERT's train and validation sources (pretrain_bert.py's datasets): sentence-split indexed
/// datasets (`preprocess --split-sentences`), each cut into splits by `--split` and served as
/// masked-LM and sentence-order samples with the special ids and word pieces of `vocabulary`
/// (each dataset's sample mapping cached under `--data-cache-path`, as GPT's indices are).
/// Several prefixes are blended as GPT's are: with weights (`--data-path 0.3 a 0.7 b`),
/// Megatron's per-dataset sample counts with 0.5% to spare, then its greedy order; without, one
/// epoch of each in proportion to its samples. `--train-data-path` and its siblings give each
/// split datasets of its own (megatron-core's per-split blends).
enum BERTDataBuilder {
    /// A source for each of `sizes` (train, valid, test; nil: not built).
    static func build(dataPath: DataPath, split: DataSplit, vocabulary: WordPieceTokenizer, config: TrainingConfig,
                      sizes: [Int?]) throws -> [(any TrainingSampleSource)?] {
        let datasets = try dataPath.prefixes.map { try IndexedDataset(prefix: $0) }
        var builder = BERTSampleBuilder(cls: vocabulary.classID, sep: vocabulary.separatorID, mask: vocabulary.maskID,
                                        pad: vocabulary.padID, isContinuation: vocabulary.tokens.map { $0.hasPrefix("##") },
                                        sequenceLength: config.seqLength, seed: config.seed,
                                        classificationHead: !config.bertNoBinaryHead)
        builder.maskingProbability = config.maskProb
        func dataset(_ index: Int, split splitIndex: Int, samples: Int?) throws -> BERTDataset {
            try BERTDataset(dataset: datasets[index], split: split, splitIndex: splitIndex, sampleCount: samples, builder: builder,
                            shortSequenceProbability: config.shortSeqProb, cacheDirectory: config.dataCachePath)
        }
        var sources = [(any TrainingSampleSource)?]()
        for (index, size) in sizes.enumerated() {
            guard let size, split.bookends[index] != nil else {
                sources.append(nil)
                continue
            }
            if datasets.count == 1 {
                sources.append(try dataset(0, split: index, samples: size))
            } else if let weights = dataPath.weights {
                let normalized = Blending.normalize(weights)
                let (target, buffer) = Blending.sampleCounts(weights: normalized, size: size)
                let parts = try datasets.indices.map { try dataset($0, split: index, samples: buffer[$0]) }
                sources.append(try BlendedSampleSource(sources: parts, weights: normalized, size: target.reduce(0, +)))
            } else {
                // Megatron-core builds one epoch of each (its build_mapping is then handed no sample
                // count and refuses it: the unweighted BERT blend fails there).
                let parts = try datasets.indices.map { try dataset($0, split: index, samples: nil) }
                let total = parts.reduce(0) { $0 + $1.count }
                sources.append(try BlendedSampleSource(sources: parts, weights: parts.map { Double($0.count) },
                                                       size: min(size, total)))
            }
        }
        return sources
    }

    /// Per-split datasets (`--train-data-path`, `--valid-data-path`; `paths[s] == nil`: none for
    /// that split): split `s` reads every document of its own prefixes.
    static func build(perSplit paths: [DataPath?], vocabulary: WordPieceTokenizer, config: TrainingConfig,
                      sizes: [Int?]) throws -> [(any TrainingSampleSource)?] {
        try DataPath.buildPerSplit(paths, sizes: sizes) { path, split, only in
            try build(dataPath: path, split: split, vocabulary: vocabulary, config: config, sizes: only)
        }
    }
}
