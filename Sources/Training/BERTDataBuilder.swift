import Datasets
import Tokenizer

/// BERT's train and validation sources (pretrain_bert.py's datasets): sentence-split indexed
/// datasets (`preprocess --split-sentences`), each cut into splits by `--split` and served as
/// masked-LM and sentence-order samples with the special ids and word pieces of `vocabulary`;
/// several prefixes with weights (`--data-path 0.3 a 0.7 b`) are blended as GPT's are
/// (Megatron's per-dataset sample counts with 0.5% to spare, then its greedy order).
enum BERTDataBuilder {
    /// A source for each of `sizes` (train, valid; nil: not built), then nil for the test split.
    static func build(dataPath: DataPath, split: DataSplit, vocabulary: WordPieceTokenizer, config: TrainingConfig,
                      sizes: [Int?]) throws -> [(any TrainingSampleSource)?] {
        guard dataPath.prefixes.count == 1 || dataPath.weights != nil else {
            throw TrainingError.invalidFlag("--data-path", "BERT blends several prefixes by the weights given before them (e.g. 0.3 a 0.7 b)")
        }
        let datasets = try dataPath.prefixes.map { try IndexedDataset(prefix: $0) }
        var builder = BERTSampleBuilder(cls: vocabulary.classID, sep: vocabulary.separatorID, mask: vocabulary.maskID,
                                        pad: vocabulary.padID, isContinuation: vocabulary.tokens.map { $0.hasPrefix("##") },
                                        sequenceLength: config.seqLength, seed: config.seed,
                                        classificationHead: !config.bertNoBinaryHead)
        builder.maskingProbability = config.maskProb
        func dataset(_ index: Int, split splitIndex: Int, samples: Int) throws -> BERTDataset {
            try BERTDataset(dataset: datasets[index], split: split, splitIndex: splitIndex, sampleCount: samples, builder: builder,
                            shortSequenceProbability: config.shortSeqProb)
        }
        var sources = [(any TrainingSampleSource)?]()
        for (index, size) in sizes.enumerated() {
            guard let size, split.bookends[index] != nil else {
                sources.append(nil)
                continue
            }
            guard let weights = dataPath.weights, datasets.count > 1 else {
                sources.append(try dataset(0, split: index, samples: size))
                continue
            }
            let normalized = Blending.normalize(weights)
            let (target, buffer) = Blending.sampleCounts(weights: normalized, size: size)
            let parts = try datasets.indices.map { try dataset($0, split: index, samples: buffer[$0]) }
            sources.append(try BlendedSampleSource(sources: parts, weights: normalized, size: target.reduce(0, +)))
        }
        return sources + [nil]
    }
}
