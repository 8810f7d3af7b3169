import Datasets
import Tokenizer

/// BERT's train and validation sources (pretrain_bert.py's datasets): one sentence-split
/// indexed dataset (`preprocess --split-sentences`), cut into splits by `--split`, served as
/// masked-LM and sentence-order samples with the special ids and word pieces of `vocabulary`.
enum BERTDataBuilder {
    /// A source for each of `sizes` (train, valid; nil: not built), then nil for the test split.
    static func build(prefix: String, split: DataSplit, vocabulary: WordPieceTokenizer, config: TrainingConfig,
                      sizes: [Int?]) throws -> [(any TrainingSampleSource)?] {
        let dataset = try IndexedDataset(prefix: prefix)
        var builder = BERTSampleBuilder(cls: vocabulary.classID, sep: vocabulary.separatorID, mask: vocabulary.maskID,
                                        pad: vocabulary.padID, isContinuation: vocabulary.tokens.map { $0.hasPrefix("##") },
                                        sequenceLength: config.seqLength, seed: config.seed,
                                        classificationHead: !config.bertNoBinaryHead)
        builder.maskingProbability = config.maskProb
        var sources = [(any TrainingSampleSource)?]()
        for (index, size) in sizes.enumerated() {
            guard let size, split.bookends[index] != nil else {
                sources.append(nil)
                continue
            }
            sources.append(try BERTDataset(dataset: dataset, split: split, splitIndex: index, sampleCount: size, builder: builder,
                                           shortSequenceProbability: config.shortSeqProb))
        }
        return sources + [nil]
    }
}
